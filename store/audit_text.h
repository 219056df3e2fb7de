/* audit_text: the audit trail's interned texts (schema v4, issue 13).
 *
 * The rows (table audit_row) hold an integer id for each repeated text of
 * a transaction (identity, fingerprint, hint, method, host, template and
 * both addresses); the texts are stored once in audit_text(id, s), and a
 * VIEW named audit joins them back, so readers see the v3 columns. The
 * writer finds ids through a bounded cache in front of the table, touched
 * by the writer thread only.
 *
 * The one thing to know: an id the writer inserted or read inside a
 * transaction is only true once that transaction commits. The writer job
 * may be rolled back and run again (busy database, a failed batch retried
 * job by job), so the cache trusts ids learned in a run only within that
 * run until done(committed) says the run's transaction committed; a run
 * that began without the previous run's outcome empties the cache first.
 *
 * Texts no row names any more (retention deleted the rows) are deleted by
 * audit_text_gc(), which also moves a generation number stored in the
 * database (audit_meta 'text_gen') on. Every run begins by reading it: a
 * cache filled under another generation is emptied, whichever writer (this
 * process or another on the same file) collected, so an id that was
 * deleted, or given again to another text, is never used from a cache. */
#ifndef KW_AUDIT_TEXT_H
#define KW_AUDIT_TEXT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "kw_addr.h"
#include "kw_err.h"

/* Slots of the cache (a power of two): every distinct text of a busy
 * trail, 8 per row at most, fits many times over; a miss costs one
 * indexed SELECT (and an INSERT the first time a text is seen). */
#define AUDIT_TEXT_SLOTS 4096u

struct audit_text;

enum kw_err audit_text_new(struct audit_text **out) KW_WUR;
void audit_text_destroy(struct audit_text *c); /* NULL is a no-op */

/* Starts a run of the writer job on db (inside its transaction, on the
 * writer's thread: its statements are the writer's, dbw_stmt). Returns
 * SQLITE_OK or the SQLite error. */
int audit_text_begin(struct audit_text *c, sqlite3 *db);

/* The id of s[0..len) (inserted the first time). SQLITE_OK or the error. */
int audit_text_id(struct audit_text *c, const char *s, size_t len, sqlite3_int64 *id);

/* The id of the address written as text ("" for none); the text is only
 * made when the address is not in the cache. */
int audit_text_addr(struct audit_text *c, const struct kw_addr *x, sqlite3_int64 *id);

/* Deletes every text no audit_row names and moves the generation on.
 * Inside the writer's transaction (after the run's inserts); *deleted is
 * the count. Returns SQLITE_OK or the SQLite error. */
int audit_text_gc(sqlite3 *db, sqlite3_int64 *deleted);

/* Ends the run (resets the statements); the transaction's outcome
 * follows in audit_text_done(). */
void audit_text_end(struct audit_text *c);

/* The run's transaction committed (its ids are kept) or failed for good
 * (they are forgotten). */
void audit_text_done(struct audit_text *c, bool committed);

#endif

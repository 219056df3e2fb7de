/* kw_term: text from the wire made safe for a terminal.
 *
 * Host, User-Agent, paths, claimed user names and token claims are chosen
 * by whoever sends the request. Printed raw to a terminal, an ESC starts a
 * control sequence (retitle the window, rewrite earlier lines so an alert
 * reads as a harmless one, with some emulators even answer back into the
 * input), a CR or BS overwrites what came before on the line, and a bidi
 * override reverses what follows. Every human-readable output of such text
 * (alert lines on stdout and syslog, audit, baseline show, rules suggest,
 * diagnostics) goes through kw_term_esc: C0 controls, DEL and bytes that
 * are not UTF-8 become \xNN, C1 controls (U+0080..U+009F) and the bidi and
 * invisible direction marks become \uNNNN. Everything else, UTF-8 text
 * included, is kept as it is. Machine outputs (EVE, JSON, HTML) have their
 * own escaping. */
#ifndef KW_TERM_H
#define KW_TERM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Escaped copy of s into out (always NUL-terminated when cap > 0; an
 * escape or character that does not fit whole is left out, with the rest).
 * Returns out. */
char *kw_term_esc(char *out, size_t cap, const char *s);

/* The code point of the valid UTF-8 sequence p[0..k) (k from kw_utf8_seq)
 * when it must not be shown as is: a C1 control, a bidi embedding,
 * override, isolate or mark, a zero-width character; 0 otherwise. The
 * HTML report uses it too. */
uint32_t kw_term_hidden(const uint8_t *p, size_t k);

/* Writes s escaped to f. */
void kw_term_fputs(const char *s, FILE *f);

#endif

/* kw_wake: how a thread sleeps until another one changed something it
 * waits for (a bounded queue got a record or room, a counter moved), in
 * place of spinning or sched_yield back-off (issue 13: idle live workers
 * cost CPU by yielding).
 *
 * The one thing to know: a waiter announces itself (kw_wake_prepare), then
 * looks at its condition once more, then sleeps (kw_wake_wait, or its own
 * poll() on kw_wake_fd next to another descriptor); a notifier publishes
 * its change first, then asks kw_wake_sleeping and kicks. Both sides put a
 * sequentially consistent fence between their store and their load, so
 * either the waiter's second look sees the change or the notifier sees the
 * waiter (Dekker): no wakeup is lost, and a notifier pays a fence and a
 * load, no system call, while nobody sleeps. A wakeup may be spurious
 * (the waiter looks again). The sleep is poll() on an eventfd, so a thread
 * can wait on a capture socket and its wakeups at once. */
#ifndef KW_WAKE_H
#define KW_WAKE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kw_err.h"

struct kw_wake {
    int fd; /* eventfd, non-blocking */
    _Atomic int sleeping;
    _Atomic uint64_t kicks; /* system calls made to wake it (stats, tests) */
};

enum kw_err kw_wake_init(struct kw_wake *w) KW_WUR;
void kw_wake_free(struct kw_wake *w);

/* Waiter: announce, then look at the condition again; if it holds,
 * kw_wake_cancel, else sleep. */
void kw_wake_prepare(struct kw_wake *w);
void kw_wake_cancel(struct kw_wake *w);
/* Sleeps until kicked or timeout_ms (-1: no timeout); ends the
 * announcement. */
void kw_wake_wait(struct kw_wake *w, int timeout_ms);
/* For a waiter that polls kw_wake_fd itself (next to a socket): drain the
 * descriptor when poll said it is readable (kw_wake_drain), and end the
 * announcement with kw_wake_cancel. */
int kw_wake_fd(const struct kw_wake *w);
void kw_wake_drain(int fd);

/* Notifier, after publishing its change: is the waiter asleep (or about
 * to be)? Then kw_wake_kick. kw_wake_notify does both. */
bool kw_wake_sleeping(struct kw_wake *w);
void kw_wake_kick(struct kw_wake *w);
void kw_wake_notify(struct kw_wake *w);

#endif

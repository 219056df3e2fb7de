/* kw_cond: condition variables whose timed waits run on CLOCK_MONOTONIC.
 *
 * pthread's default clock is the wall clock, so a deadline moves when the
 * clock is set: stepped back an hour (an NTP correction, a VM resumed from
 * a snapshot), a 100 ms wait of the database writer or the EVE flusher
 * would last an hour while audit rows pile up. Every timed wait in
 * keywarden goes through here, with deadlines on the monotonic clock. */
#ifndef KW_COND_H
#define KW_COND_H

#include <pthread.h>

#include "kw_time.h"

/* pthread_cond_init with CLOCK_MONOTONIC for its timed waits. */
int kw_cond_init(pthread_cond_t *c);

/* Microseconds on CLOCK_MONOTONIC (only differences mean anything). */
kw_ts kw_mono_now(void);

/* Waits until signalled or until `deadline` (kw_mono_now() time) has
 * passed: 0, or ETIMEDOUT. c must come from kw_cond_init. */
int kw_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, kw_ts deadline);

#endif

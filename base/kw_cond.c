/* kw_cond: timed waits on the monotonic clock (see kw_cond.h). */
#include "kw_cond.h"

#include <errno.h>
#include <time.h>

int kw_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc) return rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (!rc) rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return rc;
}

kw_ts kw_mono_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (kw_ts)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

int kw_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, kw_ts deadline)
{
    if (deadline < 0) deadline = 0;
    struct timespec t = {.tv_sec = (time_t)(deadline / 1000000),
                         .tv_nsec = (long)(deadline % 1000000) * 1000L};
    int rc = pthread_cond_timedwait(c, m, &t);
    return rc == ETIMEDOUT ? ETIMEDOUT : 0;
}

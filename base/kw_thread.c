/* kw_thread: thread names and scheduling classes (kw_thread.h). */
#include "kw_thread.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>

void kw_thread_role(const char *name, bool background)
{
    char n[16]; /* the kernel's limit, the NUL included */
    snprintf(n, sizeof n, "%s", name);
    (void)pthread_setname_np(pthread_self(), n);
    if (background) {
        struct sched_param sp = {0};
        (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    }
}

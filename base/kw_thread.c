/* kw_thread: thread names, scheduling classes and CPU by thread
 * (kw_thread.h). */
#include "kw_thread.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Threads alive (their CPU clock is read when asked) and, by name, the CPU
 * of those that ended (taken by the thread itself as it exits, in the
 * destructor of a thread-specific key: a clock is never read after its
 * thread is gone, since both happen under mu). */
#define LIVE_MAX 128
#define NAMES_MAX 32
struct live {
    char name[16];
    clockid_t clk;
    bool used;
};
struct ended {
    char name[16];
    uint64_t ns;
    unsigned n;
};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct live live[LIVE_MAX];
static struct ended ended[NAMES_MAX];
static pthread_key_t slot_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static uint64_t ns_of(const struct timespec *t)
{
    return (uint64_t)t->tv_sec * 1000000000u + (uint64_t)t->tv_nsec;
}

/* The totals row of name; NULL when the table is full (not counted). */
static struct ended *ended_row(const char *name)
{
    for (unsigned i = 0; i < NAMES_MAX; i++) {
        if (!ended[i].name[0]) snprintf(ended[i].name, sizeof ended[i].name, "%s", name);
        if (!strcmp(ended[i].name, name)) return &ended[i];
    }
    return NULL;
}

static void on_exit_thread(void *v)
{
    struct live *l = &live[(uintptr_t)v - 1];
    struct timespec t;
    bool have = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) == 0;
    pthread_mutex_lock(&mu);
    struct ended *e = ended_row(l->name);
    if (e && have) {
        e->ns += ns_of(&t);
        e->n++;
    }
    l->used = false;
    pthread_mutex_unlock(&mu);
}

static void make_key(void)
{
    (void)pthread_key_create(&slot_key, on_exit_thread);
}

/* Enters the calling thread under name; a thread not entered (no room, no
 * clock) is simply not counted. */
static void enter(const char *name, bool with_exit)
{
    clockid_t clk;
    if (pthread_getcpuclockid(pthread_self(), &clk) != 0) return;
    if (with_exit) pthread_once(&key_once, make_key);
    pthread_mutex_lock(&mu);
    uintptr_t had = with_exit ? (uintptr_t)pthread_getspecific(slot_key) : 0;
    if (had) { /* named again: the same thread, a new name */
        snprintf(live[had - 1].name, sizeof live[had - 1].name, "%s", name);
        pthread_mutex_unlock(&mu);
        return;
    }
    for (unsigned i = 0; i < LIVE_MAX; i++) {
        if (live[i].used) continue;
        live[i].used = true;
        live[i].clk = clk;
        snprintf(live[i].name, sizeof live[i].name, "%s", name);
        if (with_exit) (void)pthread_setspecific(slot_key, (void *)(uintptr_t)(i + 1));
        break;
    }
    pthread_mutex_unlock(&mu);
}

void kw_thread_role(const char *name, bool background)
{
    char n[16]; /* the kernel's limit, the NUL included */
    snprintf(n, sizeof n, "%s", name);
    (void)pthread_setname_np(pthread_self(), n);
    if (background) {
        struct sched_param sp = {0};
        (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    }
    enter(n, true);
}

void kw_thread_main(void)
{
    enter("main", false);
}

/* Adds ns of `count` threads to name's row of out (made when there is room). */
static void add_row(struct kw_thread_cpu *out, size_t *n, size_t max, const char *name,
                    uint64_t ns, unsigned count)
{
    size_t j = 0;
    while (j < *n && strcmp(out[j].name, name))
        j++;
    if (j == *n) {
        if (*n == max) return;
        memset(&out[j], 0, sizeof out[j]);
        snprintf(out[j].name, sizeof out[j].name, "%s", name);
        (*n)++;
    }
    out[j].seconds += (double)ns / 1e9;
    out[j].threads += count;
}

size_t kw_thread_cpu(struct kw_thread_cpu *out, size_t max)
{
    size_t n = 0;
    struct timespec t;
    pthread_mutex_lock(&mu);
    for (unsigned i = 0; i < NAMES_MAX; i++)
        if (ended[i].n) add_row(out, &n, max, ended[i].name, ended[i].ns, ended[i].n);
    for (unsigned i = 0; i < LIVE_MAX; i++)
        if (live[i].used && clock_gettime(live[i].clk, &t) == 0)
            add_row(out, &n, max, live[i].name, ns_of(&t), 1);
    pthread_mutex_unlock(&mu);
    return n;
}

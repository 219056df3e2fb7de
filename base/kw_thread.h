/* kw_thread: what a thread of ours is, told to the kernel once at its
 * start: a name (`top -H`, `ps -L`, perf and core dumps show which thread
 * is busy) and, for threads that only drain what the packet path made,
 * the scheduler's batch class. */
#ifndef KW_THREAD_H
#define KW_THREAD_H

#include <stdbool.h>
#include <stddef.h>

/* Names the calling thread ("kw-" and at most 12 more characters; longer
 * names are cut). With background set the thread is SCHED_BATCH: it gets
 * its fair share of CPU as before, but waking it (a batch to write, a
 * buffer to render) no longer preempts the thread that woke it. The packet
 * thread wakes the reader, the EVE flusher and the database writer many
 * times a second; each wakeup on its core preempted it (910 switches in a
 * run of the 450 MB small-API capture, 311 with this). Best effort: a
 * failure changes nothing else. Never for the main thread: its name is
 * the process's (ps, pkill, systemd). */
void kw_thread_role(const char *name, bool background);

/* Counts the calling thread, the process's main one, under "main" in
 * kw_thread_cpu (kw_thread_role counts the threads it names). */
void kw_thread_main(void);

/* CPU time by thread name, so far: the main thread and every thread that
 * went through kw_thread_role, alive or ended (threads of one name summed:
 * `threads` of them). Fills at most max rows; returns how many. For the
 * stats record and metrics: which stage is busy, without perf. */
struct kw_thread_cpu {
    char name[16];
    double seconds;
    unsigned threads;
};
size_t kw_thread_cpu(struct kw_thread_cpu *out, size_t max);

#endif

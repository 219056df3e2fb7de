/* kw_wake: sleep until another thread changed something (see kw_wake.h). */
#include "kw_wake.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum kw_err kw_wake_init(struct kw_wake *w)
{
    atomic_init(&w->sleeping, 0);
    atomic_init(&w->kicks, 0);
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return w->fd >= 0 ? KW_E_OK : KW_E_IO;
}

void kw_wake_free(struct kw_wake *w)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
}

void kw_wake_prepare(struct kw_wake *w)
{
    atomic_store_explicit(&w->sleeping, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst); /* pairs with kw_wake_sleeping's */
}

void kw_wake_cancel(struct kw_wake *w)
{
    /* A kick that raced with this leaves the eventfd readable: the next
     * sleep returns at once and drains it (one spurious wakeup). */
    atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
}

int kw_wake_fd(const struct kw_wake *w)
{
    return w->fd;
}

void kw_wake_drain(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
}

void kw_wake_wait(struct kw_wake *w, int timeout_ms)
{
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) > 0 && (p.revents & POLLIN)) kw_wake_drain(w->fd);
    kw_wake_cancel(w);
}

bool kw_wake_sleeping(struct kw_wake *w)
{
    atomic_thread_fence(memory_order_seq_cst); /* the change before the look */
    return atomic_load_explicit(&w->sleeping, memory_order_relaxed) != 0;
}

void kw_wake_kick(struct kw_wake *w)
{
    /* one write per announcement, however many notifiers see it */
    if (!atomic_exchange_explicit(&w->sleeping, 0, memory_order_relaxed)) return;
    atomic_fetch_add_explicit(&w->kicks, 1, memory_order_relaxed);
    uint64_t one = 1;
    while (write(w->fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

void kw_wake_notify(struct kw_wake *w)
{
    if (kw_wake_sleeping(w)) kw_wake_kick(w);
}

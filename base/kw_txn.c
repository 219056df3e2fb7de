/* kw_txn: names of transaction flags (see kw_txn.h). */
#include "kw_txn.h"

#include <stddef.h>
#include <string.h>

static const char *const flag_names[] = {
#define KW_TXN_FLAG_NAME(n, s) s,
    KW_TXN_FLAGS(KW_TXN_FLAG_NAME)
#undef KW_TXN_FLAG_NAME
};

const char *kw_txn_flag_name(unsigned bit)
{
    return bit < KW_TXN_BIT__COUNT ? flag_names[bit] : NULL;
}

/* The layout kw_txn_clear relies on: the text buffers it does not zero lie
 * between `hostname` and `status`. */
_Static_assert(offsetof(struct kw_txn, hostname) < offsetof(struct kw_txn, url) &&
                   offsetof(struct kw_txn, url) < offsetof(struct kw_txn, path) &&
                   offsetof(struct kw_txn, path) < offsetof(struct kw_txn, template_) &&
                   offsetof(struct kw_txn, template_) < offsetof(struct kw_txn, user_agent) &&
                   offsetof(struct kw_txn, user_agent) < offsetof(struct kw_txn, status),
               "kw_txn text buffers moved: update kw_txn_clear");

void kw_txn_clear(struct kw_txn *t)
{
    memset(t, 0, offsetof(struct kw_txn, hostname));
    t->hostname[0] = t->url[0] = t->path[0] = t->template_[0] = t->user_agent[0] = 0;
    memset(&t->status, 0, sizeof *t - offsetof(struct kw_txn, status));
}

bool kw_txn_refused(const struct kw_txn *t)
{
    if (t->status == 401 || t->status == 403) return true;
    return t->has_grpc_status && (t->grpc_status == 16 || t->grpc_status == 7);
}

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

static const char *const ovr_names[KW_OVR__COUNT] = {
    [KW_OVR_NONE] = "",
    [KW_OVR_X_HTTP_METHOD_OVERRIDE] = "X-HTTP-Method-Override",
    [KW_OVR_X_HTTP_METHOD] = "X-HTTP-Method",
    [KW_OVR_X_METHOD_OVERRIDE] = "X-Method-Override",
    [KW_OVR_QUERY_METHOD] = "?_method",
    [KW_OVR_X_ORIGINAL_URL] = "X-Original-URL",
    [KW_OVR_X_REWRITE_URL] = "X-Rewrite-URL",
};

const char *kw_txn_ovr_src_name(unsigned src)
{
    return src < KW_OVR__COUNT ? ovr_names[src] : "";
}

/* The layout kw_txn_clear relies on: the text buffers it does not zero lie
 * between `hostname` and `status`. */
_Static_assert(offsetof(struct kw_txn, hostname) < offsetof(struct kw_txn, url) &&
                   offsetof(struct kw_txn, url) < offsetof(struct kw_txn, path) &&
                   offsetof(struct kw_txn, path) < offsetof(struct kw_txn, template_) &&
                   offsetof(struct kw_txn, template_) < offsetof(struct kw_txn, user_agent) &&
                   offsetof(struct kw_txn, user_agent) < offsetof(struct kw_txn, ovr_url) &&
                   offsetof(struct kw_txn, ovr_url) < offsetof(struct kw_txn, eff_path) &&
                   offsetof(struct kw_txn, eff_path) < offsetof(struct kw_txn, status),
               "kw_txn text buffers moved: update kw_txn_clear");

void kw_txn_clear(struct kw_txn *t)
{
    memset(t, 0, offsetof(struct kw_txn, hostname));
    t->hostname[0] = t->url[0] = t->path[0] = t->template_[0] = t->user_agent[0] = 0;
    t->ovr_url[0] = t->eff_path[0] = 0;
    memset(&t->status, 0, sizeof *t - offsetof(struct kw_txn, status));
}

bool kw_txn_refused(const struct kw_txn *t)
{
    if (t->status == 401 || t->status == 403) return true;
    return t->has_grpc_status && (t->grpc_status == 16 || t->grpc_status == 7);
}

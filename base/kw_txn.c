/* kw_txn: names of transaction flags (see kw_txn.h). */
#include "kw_txn.h"

#include <stddef.h>
#include <stdint.h>
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

/* The text fields kw_txn_pack compacts, in struct order (kw_txn_pack walks
 * them once, front to back). Fields under 32 bytes go as raw bytes: a
 * length would save little there. */
struct txn_text {
    uint16_t off, size;
};

#define TXT(f) {offsetof(struct kw_txn, f), sizeof(((struct kw_txn *)0)->f)}
static const struct txn_text txn_text[] = {
    TXT(hostname),
    TXT(url),
    TXT(path),
    TXT(template_),
    TXT(user_agent),
    TXT(ovr_url),
    TXT(eff_path),
    TXT(grpc_message),
    TXT(cred.source),
    TXT(cred.fingerprint),
    TXT(cred.hint),
    TXT(cred.basic_user),
    TXT(cred.jwt.iss),
    TXT(cred.jwt.sub),
    TXT(cred.jwt.aud),
    TXT(cred.jwt.client_id),
    TXT(cred.jwt.scope),
    TXT(cred.jwt.cnf_jkt),
    TXT(cred.cert_subject),
    TXT(cred.dpop.htu),
    TXT(cred.dpop.jti),
    TXT(cred.dpop.jkt),
    TXT(cred.dpop.ath),
    TXT(cred.dpop.error),
    TXT(identity.id),
    TXT(identity.name),
    TXT(tls.sni),
    TXT(tls.ja4),
};
#undef TXT

enum { TXN_TEXTS = sizeof txn_text / sizeof txn_text[0] };
_Static_assert(sizeof(struct kw_txn) <= UINT16_MAX, "kw_txn offsets no longer fit 16 bits");
_Static_assert(TXN_TEXTS * sizeof(uint16_t) <= 128, "KW_TXN_PACKED_MAX: more room for lengths");

size_t kw_txn_pack(const struct kw_txn *t, void *buf)
{
    const uint8_t *s = (const uint8_t *)t;
    uint8_t *o = buf;
    size_t cur = 0;
    for (size_t i = 0; i < TXN_TEXTS; i++) {
        const struct txn_text *x = &txn_text[i];
        /* most of the 28 texts are empty and most gaps none: no call for
         * those (a packed copy per transaction goes to the EVE writer) */
        if (x->off > cur) {
            memcpy(o, s + cur, x->off - cur);
            o += x->off - cur;
        }
        uint16_t n = s[x->off] ? (uint16_t)strnlen((const char *)s + x->off, x->size) : 0;
        memcpy(o, &n, sizeof n);
        if (n) memcpy(o + sizeof n, s + x->off, n);
        o += sizeof n + n;
        cur = (size_t)x->off + x->size;
    }
    memcpy(o, s + cur, sizeof *t - cur);
    o += sizeof *t - cur;
    return (size_t)(o - (uint8_t *)buf);
}

size_t kw_txn_unpack(struct kw_txn *t, const void *buf)
{
    uint8_t *d = (uint8_t *)t;
    const uint8_t *p = buf;
    size_t cur = 0;
    for (size_t i = 0; i < TXN_TEXTS; i++) {
        const struct txn_text *x = &txn_text[i];
        if (x->off > cur) {
            memcpy(d + cur, p, x->off - cur);
            p += x->off - cur;
        }
        uint16_t n;
        memcpy(&n, p, sizeof n);
        if (n) memcpy(d + x->off, p + sizeof n, n);
        if (n < x->size) d[x->off + n] = 0;
        p += sizeof n + n;
        cur = (size_t)x->off + x->size;
    }
    memcpy(d + cur, p, sizeof *t - cur);
    p += sizeof *t - cur;
    return (size_t)(p - (const uint8_t *)buf);
}

bool kw_identity_claimed(const struct kw_identity_ref *r)
{
    return !strcmp(r->via, "basic_user") || !strcmp(r->via, "jwt") ||
           !strcmp(r->via, "client_id");
}

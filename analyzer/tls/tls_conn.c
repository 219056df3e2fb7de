/* tls_conn: records, handshake, keys and decryption of one connection
 * (see tls_conn.h). Stages of a direction's protection: CLEAR until its
 * ChangeCipherSpec (TLS 1.2) or the ServerHello (TLS 1.3); then HS (TLS
 * 1.3 handshake traffic keys) until that side's Finished; then APP
 * (application traffic keys, renewed by KeyUpdate, RFC 8446 §4.6.3). */
#include "tls_conn.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "tls_rec.h"

enum { ST_CLEAR = 0, ST_HS, ST_APP };
enum { KS_NONE = 0, KS_WAIT, KS_OK, KS_GONE }; /* keys: none/awaited/in use/given up */

struct tls_dir {
    uint8_t *hs; /* handshake bytes not yet a whole message */
    uint32_t hs_len, hs_cap;
    bool hs_skip;  /* skipping an over-long message */
    uint32_t hs_skip_left;
    uint8_t stage; /* ST_* */
    bool enc;      /* records are protected */
    bool lost;     /* resynchronising after a gap */
    bool dead;     /* decryption given up */
    bool finished; /* TLS 1.3: this side's Finished seen: switch to APP after the record */
    bool key_update;
    uint64_t lost_bytes;
    uint64_t recs; /* records seen (average size, after loss) */
    kw_ts held_ts; /* when the first bytes of a partial record were offered */
    uint32_t fails;
    struct tls_keys k;
    uint8_t *pt; /* decrypted bytes the app parser has not consumed */
    uint32_t pt_len, pt_cap;
};

struct tls_conn {
    struct tls_ctx *x;
    struct tls_conn_cb cb;
    struct tls_dir d[2];
    struct tls_info info;
    uint8_t ks;
    bool done;
    uint64_t kl_gen;
    uint8_t app_secret[2][48]; /* TLS 1.3 traffic secrets _0, until the switch */
    uint8_t secret_len;
    bool have_app[2];
};

void tls_limits_default(struct tls_limits *l)
{
    l->hs_bytes = 64 * 1024;
    l->plain_bytes = 256 * 1024;
    l->wait_bytes = 512 * 1024;
    l->resync_tries = 64;
    l->memcap = UINT64_C(512) << 20;
}

size_t tls_conn_mem(const struct tls_limits *l)
{
    return sizeof(struct tls_conn) + 2 * ((size_t)l->hs_bytes + l->plain_bytes);
}

/* May the connections of x hold `more` bytes? (A refusal is counted.) */
static bool mem_take(struct tls_ctx *x, size_t more)
{
    if (x->lim.memcap && x->mem + more > x->lim.memcap) {
        x->cnt.memcap_refusals++;
        return false;
    }
    x->mem += more;
    return true;
}

void tls_ctx_init(struct tls_ctx *x, const struct tls_limits *l, struct tls_keylog *kl)
{
    memset(&x->cnt, 0, sizeof x->cnt);
    x->mem = 0;
    if (l)
        x->lim = *l;
    else
        tls_limits_default(&x->lim);
    x->kl = kl;
}

void tls_counters_add(struct tls_counters *t, const struct tls_counters *c)
{
#define TLS_CNT_ADD(n, d) t->n += c->n;
    TLS_COUNTERS(TLS_CNT_ADD)
#undef TLS_CNT_ADD
}

struct tls_conn *tls_conn_new(struct tls_ctx *x, const struct tls_conn_cb *cb, bool midstream)
{
    if (!mem_take(x, sizeof(struct tls_conn)))
        return NULL;
    struct tls_conn *c = calloc(1, sizeof *c);
    if (!c) {
        x->mem -= sizeof *c;
        return NULL;
    }
    c->x = x;
    c->cb = *cb;
    c->info.midstream = midstream;
    x->cnt.sessions++;
    if (midstream) {
        x->cnt.midstream++;
        c->d[0].lost = c->d[1].lost = true;
    }
    return c;
}

static void wipe_keys(struct tls_conn *c)
{
    for (int i = 0; i < 2; i++)
        tls_keys_wipe(&c->d[i].k);
    OPENSSL_cleanse(c->app_secret, sizeof c->app_secret);
}

void tls_conn_destroy(struct tls_conn *c)
{
    if (!c)
        return;
    wipe_keys(c);
    for (int i = 0; i < 2; i++) {
        if (c->d[i].pt)
            OPENSSL_cleanse(c->d[i].pt, c->d[i].pt_cap);
        free(c->d[i].pt);
        free(c->d[i].hs);
        c->x->mem -= (uint64_t)c->d[i].pt_cap + c->d[i].hs_cap;
    }
    c->x->mem -= sizeof *c;
    free(c);
}

const struct tls_info *tls_conn_info(const struct tls_conn *c)
{
    return &c->info;
}

bool tls_info_is_h2(const struct tls_info *i)
{
    return i->have_sh && i->sh.has_alpn && i->sh.alpn.full_len == 2 && !memcmp(i->sh.alpn.b, "h2", 2);
}

void tls_info_alpn(const struct tls_info *i, char *out, size_t size)
{
    size_t k = 0;
    if (i->have_sh && i->sh.has_alpn)
        for (; k < i->sh.alpn.len && k + 1 < size; k++)
            out[k] = i->sh.alpn.b[k] >= 0x20 && i->sh.alpn.b[k] < 0x7f ? (char)i->sh.alpn.b[k] : '?';
    out[k] = 0;
}

/* ---- handshake done ---------------------------------------------------- */

static void done(struct tls_conn *c, kw_ts ts)
{
    if (c->done)
        return;
    c->done = true;
    if (c->cb.on_handshake)
        c->cb.on_handshake(c->cb.user, &c->info, ts);
}

/* ---- keys -------------------------------------------------------------- */

static void keys_from(struct tls_conn *c, struct tls_secrets *s)
{
    struct tls_counters *n = &c->x->cnt;
    const struct tls_suite *su = tls_suite_find(c->info.sh.cipher);
    uint16_t v = c->info.version;
    c->info.keys_found = true;
    n->keys_found++;
    c->ks = KS_GONE;
    if (!su || (v != 0x0303 && v != 0x0304) || (v == 0x0304) != (su->id >> 8 == 0x13)) {
        n->unsupported++;
        return;
    }
    if (v == 0x0303) {
        if (!(s->have & TLS_SEC_MASTER) ||
            tls12_keys_set(&c->d[0].k, &c->d[1].k, su, s->master, c->info.ch.random,
                           c->info.sh.random, c->info.sh.etm))
            return;
        c->ks = KS_OK;
        return;
    }
    uint8_t need = su->sha384 ? 48 : 32;
    if (s->len13 != need)
        return;
    c->secret_len = need;
    memcpy(c->app_secret[0], s->cts0, need);
    memcpy(c->app_secret[1], s->sts0, need);
    bool hs = (s->have & (TLS_SEC_CHTS | TLS_SEC_SHTS)) == (TLS_SEC_CHTS | TLS_SEC_SHTS);
    bool app = (s->have & (TLS_SEC_CTS0 | TLS_SEC_STS0)) == (TLS_SEC_CTS0 | TLS_SEC_STS0);
    c->have_app[0] = c->have_app[1] = app;
    for (int i = 0; i < 2; i++) {
        struct tls_dir *d = &c->d[i];
        if (d->stage == ST_APP || (!hs && app)) {
            d->stage = ST_APP;
            if (app && tls13_keys_set(&d->k, su, c->app_secret[i], need))
                return;
        } else if (hs && tls13_keys_set(&d->k, su, i ? s->shts : s->chts, need)) {
            return;
        }
    }
    if (hs || app)
        c->ks = KS_OK;
}

/* Looks the session up when the key log changed since the last try. */
static void try_keys(struct tls_conn *c)
{
    struct tls_keylog *kl = c->x->kl;
    if (c->ks == KS_OK || c->ks == KS_GONE || !kl || !c->info.have_sh || !c->info.have_ch)
        return;
    uint64_t g = tls_keylog_generation(kl);
    if (c->ks == KS_WAIT && g == c->kl_gen)
        return;
    c->kl_gen = g;
    struct tls_secrets s;
    if (tls_keylog_lookup(kl, c->info.ch.random, &s)) {
        bool v13 = c->info.version == 0x0304;
        bool enough = v13 ? (s.have & (TLS_SEC_CTS0 | TLS_SEC_STS0)) == (TLS_SEC_CTS0 | TLS_SEC_STS0)
                          : (s.have & TLS_SEC_MASTER) != 0;
        if (enough)
            keys_from(c, &s);
        else
            c->ks = KS_WAIT; /* the rest of the lines are still to come */
    } else {
        c->ks = KS_WAIT;
    }
    OPENSSL_cleanse(&s, sizeof s);
}

/* Keys will not come: stop holding records for them. */
static void give_up_keys(struct tls_conn *c)
{
    if (c->ks == KS_WAIT) {
        c->ks = KS_GONE;
        c->x->cnt.keys_missing++;
    }
}

/* ---- application data ------------------------------------------------ */

static void deliver(struct tls_conn *c, int dir, const uint8_t *p, size_t n, kw_ts ts)
{
    struct tls_dir *d = &c->d[dir];
    c->info.plain[dir] += n;
    c->x->cnt.app_bytes += n;
    if (!c->cb.on_data)
        return;
    if (!d->pt_len) {
        size_t used = c->cb.on_data(c->cb.user, dir, p, n, ts);
        p += used;
        n -= used;
        if (!n)
            return;
    }
    if (d->pt_len + n > c->x->lim.plain_bytes) {
        /* the parser is not taking bytes: drop what it holds, say a gap */
        c->x->cnt.plain_limit += d->pt_len + n;
        if (c->cb.on_gap)
            c->cb.on_gap(c->cb.user, dir, d->pt_len + n, ts);
        d->pt_len = 0;
        return;
    }
    if (d->pt_len + n > d->pt_cap) {
        uint32_t cap = d->pt_cap ? d->pt_cap : 16384;
        while (cap < d->pt_len + n)
            cap *= 2;
        if (!mem_take(c->x, cap - d->pt_cap)) {
            c->x->cnt.plain_limit += n;
            return;
        }
        uint8_t *q = realloc(d->pt, cap);
        if (!q) {
            c->x->mem -= cap - d->pt_cap;
            c->x->cnt.plain_limit += n;
            return;
        }
        d->pt = q;
        d->pt_cap = cap;
    }
    memcpy(d->pt + d->pt_len, p, n);
    d->pt_len += (uint32_t)n;
    size_t used = c->cb.on_data(c->cb.user, dir, d->pt, d->pt_len, ts);
    memmove(d->pt, d->pt + used, d->pt_len - used);
    d->pt_len -= (uint32_t)used;
}

/* ---- handshake messages ---------------------------------------------- */

static void on_client_hello(struct tls_conn *c, const uint8_t *b, size_t n, kw_ts ts)
{
    struct tls_counters *k = &c->x->cnt;
    if (c->info.have_ch)
        return; /* the second ClientHello after a HelloRetryRequest: fingerprint the first */
    struct tls_info *i = &c->info;
    if (tls_parse_client_hello(b, n, &i->ch)) {
        k->bad_handshake++;
        return;
    }
    k->client_hellos++;
    i->have_ch = true;
    i->ts_start = ts;
    tls_ja3(&i->ch, i->ja3_str, sizeof i->ja3_str, i->ja3);
    tls_ja4(&i->ch, false, i->ja4);
}

static void on_server_hello(struct tls_conn *c, const uint8_t *b, size_t n)
{
    struct tls_info *i = &c->info;
    struct tls_server_hello sh;
    if (tls_parse_server_hello(b, n, &sh)) {
        c->x->cnt.bad_handshake++;
        return;
    }
    c->x->cnt.server_hellos++;
    if (sh.hrr) {
        i->hrr = true;
        return;
    }
    if (i->have_sh)
        return;
    i->sh = sh;
    i->have_sh = true;
    i->version = sh.version;
    tls_ja3s(&sh, i->ja3s_str, sizeof i->ja3s_str, i->ja3s);
    tls_ja4s(&sh, i->ja4s);
    if (sh.version == 0x0304) {
        for (size_t e = 0; e < sh.n_exts && e < TLS_HS_MAX_EXTS; e++)
            i->resumed |= sh.exts[e] == 0x0029; /* pre_shared_key accepted */
        c->d[0].enc = c->d[1].enc = true;
        c->d[0].stage = c->d[1].stage = ST_HS;
    } else {
        i->resumed = sh.sid_len && sh.sid_len == i->ch.sid_len &&
                     !memcmp(sh.sid, i->ch.sid, sh.sid_len);
    }
    try_keys(c);
}

static void on_certificate(struct tls_conn *c, int dir, const uint8_t *b, size_t n)
{
    const uint8_t *leaf;
    size_t ll;
    unsigned count;
    if (tls_parse_certificate(b, n, c->info.version == 0x0304, &leaf, &ll, &count)) {
        c->x->cnt.bad_handshake++;
        return;
    }
    struct tls_cert *dst = dir ? &c->info.srv_cert : &c->info.cli_cert;
    if (!count || dst->present)
        return;
    c->x->cnt.certificates++;
    tls_x509_parse(leaf, ll, dst);
    if (dir)
        c->info.srv_chain = (uint16_t)count;
    else
        c->info.cli_chain = (uint16_t)count;
}

static void hs_message(struct tls_conn *c, int dir, uint8_t type, const uint8_t *b, size_t n,
                       kw_ts ts)
{
    struct tls_dir *d = &c->d[dir];
    switch (type) {
    case TLS_HS_CLIENT_HELLO:
        if (dir == 0)
            on_client_hello(c, b, n, ts);
        break;
    case TLS_HS_SERVER_HELLO:
        if (dir == 1)
            on_server_hello(c, b, n);
        break;
    case TLS_HS_ENCRYPTED_EXTENSIONS: /* TLS 1.3: the ALPN the server chose (h2) */
        if (dir == 1 && c->info.have_sh)
            (void)tls_parse_encrypted_extensions(b, n, &c->info.sh);
        break;
    case TLS_HS_CERTIFICATE:
        on_certificate(c, dir, b, n);
        break;
    case TLS_HS_FINISHED:
        if (d->stage == ST_HS && c->info.version == 0x0304)
            d->finished = true;
        break;
    case TLS_HS_KEY_UPDATE:
        if (d->stage == ST_APP && c->info.version == 0x0304)
            d->key_update = true;
        break;
    default:
        break;
    }
}

/* Handshake bytes of one direction: messages may span records and a record
 * may hold several (RFC 8446 §5.1). */
static void hs_bytes(struct tls_conn *c, int dir, const uint8_t *p, size_t n, kw_ts ts)
{
    struct tls_dir *d = &c->d[dir];
    uint32_t max = c->x->lim.hs_bytes;
    while (n) {
        if (d->hs_skip) {
            size_t k = n < d->hs_skip_left ? n : d->hs_skip_left;
            d->hs_skip_left -= (uint32_t)k;
            p += k;
            n -= k;
            d->hs_skip = d->hs_skip_left > 0;
            continue;
        }
        /* whole messages straight from the record, when nothing is pending */
        if (!d->hs_len && n >= 4) {
            uint32_t ml = (uint32_t)p[1] << 16 | p[2] << 8 | p[3];
            if (ml + 4 <= n) {
                hs_message(c, dir, p[0], p + 4, ml, ts);
                p += 4 + ml;
                n -= 4 + ml;
                continue;
            }
            if (ml + 4 > max) {
                c->x->cnt.hs_limit++;
                d->hs_skip = true;
                d->hs_skip_left = ml + 4;
                continue;
            }
        }
        size_t want = 4;
        if (d->hs_len >= 4)
            want = 4 + ((uint32_t)d->hs[1] << 16 | d->hs[2] << 8 | d->hs[3]);
        if (want > max) {
            c->x->cnt.hs_limit++;
            d->hs_skip = true;
            d->hs_skip_left = (uint32_t)(want - d->hs_len);
            d->hs_len = 0;
            continue;
        }
        if (d->hs_cap < want) {
            uint32_t cap = d->hs_cap ? d->hs_cap : 4096;
            while (cap < want)
                cap *= 2;
            if (!mem_take(c->x, cap - d->hs_cap)) {
                c->x->cnt.hs_limit++;
                d->hs_len = 0;
                return;
            }
            uint8_t *q = realloc(d->hs, cap);
            if (!q) {
                c->x->mem -= cap - d->hs_cap;
                c->x->cnt.hs_limit++;
                d->hs_len = 0;
                return;
            }
            d->hs = q;
            d->hs_cap = cap;
        }
        size_t k = want - d->hs_len < n ? want - d->hs_len : n;
        memcpy(d->hs + d->hs_len, p, k);
        d->hs_len += (uint32_t)k;
        p += k;
        n -= k;
        if (d->hs_len == want && want > 4) {
            d->hs_len = 0;
            hs_message(c, dir, d->hs[0], d->hs + 4, want - 4, ts);
        } else if (d->hs_len == 4 && want == 4 && !(d->hs[1] | d->hs[2] | d->hs[3])) {
            d->hs_len = 0;
            hs_message(c, dir, d->hs[0], d->hs + 4, 0, ts);
        }
    }
}

/* ---- protected records ------------------------------------------------ */

/* Decrypts with the expected sequence number, or after loss, with the ones
 * around where the lost bytes put it. -1 when nothing authenticates. */
static int decrypt(struct tls_conn *c, int dir, const uint8_t *rec, size_t len, uint8_t *type)
{
    struct tls_dir *d = &c->d[dir];
    uint8_t *out = c->x->scratch;
    int n = tls_decrypt_seq(&d->k, d->k.seq, rec, rec + 5, len, out, type);
    if (n >= 0) {
        d->k.seq++;
        return n;
    }
    if (!d->lost_bytes)
        return -1;
    /* records lost in the gap: start where the average record size puts
     * the next one, and widen */
    uint64_t avg = c->info.bytes[dir] / (d->recs ? d->recs : 1);
    uint64_t est = d->lost_bytes / (avg > 64 ? avg : 64);
    for (uint32_t t = 1; t <= c->x->lim.resync_tries; t++) {
        int64_t delta = (t & 1) ? (int64_t)(t / 2) : -(int64_t)(t / 2);
        if ((int64_t)est + delta < 0)
            continue;
        uint64_t s = d->k.seq + est + (uint64_t)delta;
        n = tls_decrypt_seq(&d->k, s, rec, rec + 5, len, out, type);
        if (n >= 0) {
            d->k.seq = s + 1;
            c->x->cnt.seq_recovered++;
            d->lost_bytes = 0;
            return n;
        }
    }
    return -1;
}

static void switch_app(struct tls_conn *c, int dir)
{
    struct tls_dir *d = &c->d[dir];
    const struct tls_suite *s = d->k.s;
    d->stage = ST_APP;
    if (!c->have_app[dir] || tls13_keys_set(&d->k, s, c->app_secret[dir], c->secret_len))
        d->dead = true;
    c->have_app[dir] = false;
    OPENSSL_cleanse(c->app_secret[dir], sizeof c->app_secret[dir]);
}

static void protected_record(struct tls_conn *c, int dir, const uint8_t *rec, size_t len, kw_ts ts)
{
    struct tls_dir *d = &c->d[dir];
    struct tls_counters *k = &c->x->cnt;
    uint8_t type;
    int n = decrypt(c, dir, rec, len, &type);
    if (n < 0 && d->k.tls13 && d->stage == ST_HS && c->have_app[dir]) {
        /* its Finished was missed (loss): the application keys may fit */
        switch_app(c, dir);
        n = d->dead ? -1 : decrypt(c, dir, rec, len, &type);
    }
    if (n < 0) {
        k->decrypt_failures++;
        if (++d->fails >= 8 || d->lost_bytes) {
            d->dead = true;
            k->dir_lost++;
        }
        if (c->cb.on_gap && d->stage == ST_APP)
            c->cb.on_gap(c->cb.user, dir, len, ts);
        return;
    }
    d->fails = 0;
    d->lost_bytes = 0;
    k->records_decrypted++;
    c->info.decrypted = true;
    const uint8_t *pt = c->x->scratch;
    if (type == TLS_CT_HANDSHAKE)
        hs_bytes(c, dir, pt, (size_t)n, ts);
    else if (type == TLS_CT_APPLICATION_DATA)
        deliver(c, dir, pt, (size_t)n, ts);
    if (d->finished) {
        d->finished = false;
        switch_app(c, dir);
        if (dir == 0)
            done(c, ts); /* the client's Finished: its certificate is known */
    }
    if (d->key_update) {
        d->key_update = false;
        if (tls13_key_update(&d->k))
            d->dead = true;
        else
            k->key_updates++;
    }
}

/* 0 consumed, 1 hold (keys awaited). */
static int record(struct tls_conn *c, int dir, const struct tls_rec_hdr *h, const uint8_t *rec,
                  size_t held, kw_ts ts)
{
    struct tls_dir *d = &c->d[dir];
    const uint8_t *body = rec + TLS_REC_HDR;
    if (h->type == TLS_CT_CHANGE_CIPHER_SPEC) {
        if (c->info.version != 0x0304 && c->info.have_sh) {
            d->enc = true;
            d->stage = ST_APP;
            if (c->d[0].enc && c->d[1].enc && !c->d[0].k.s && c->ks != KS_OK)
                try_keys(c);
        }
        return 0;
    }
    if (!d->enc) {
        if (h->type == TLS_CT_HANDSHAKE)
            hs_bytes(c, dir, body, h->len, ts);
        else if (h->type == TLS_CT_APPLICATION_DATA)
            done(c, ts);
        return 0;
    }
    try_keys(c);
    if (c->ks == KS_WAIT) {
        if (held < c->x->lim.wait_bytes) {
            c->x->cnt.records_waited++;
            return 1;
        }
        give_up_keys(c);
    }
    if (c->ks == KS_OK && !d->dead) {
        protected_record(c, dir, rec, h->len, ts);
        if (c->info.version == 0x0303 && c->d[0].enc && c->d[1].enc)
            done(c, ts);
        return 0;
    }
    /* no keys: TLS 1.3's client Finished (its first protected record) or
     * TLS 1.2's first protected records end what can be seen */
    if (dir == 0 || c->info.version == 0x0303)
        done(c, ts);
    return 0;
}

size_t tls_conn_feed(struct tls_conn *c, int dir, const uint8_t *p, size_t len, kw_ts ts)
{
    struct tls_dir *d = &c->d[dir];
    struct tls_counters *k = &c->x->cnt;
    size_t used = 0;
    while (used < len) {
        if (d->lost) {
            size_t s = tls_rec_resync(p + used, len - used);
            k->resync_bytes += s;
            used += s;
            if (used == len || len - used < TLS_REC_HDR)
                break;
            d->lost = false;
        }
        struct tls_rec_hdr h;
        int r = tls_rec_header(p + used, len - used, &h);
        if (r == 0)
            break;
        if (r < 0) {
            k->bad_records++;
            d->lost = true;
            d->hs_len = 0;
            used++;
            continue;
        }
        if (len - used < TLS_REC_HDR + (size_t)h.len) {
            /* the rest of the record is still to come; its time is when its
             * first bytes came (a request starts then, not at its last
             * segment) */
            if (!d->held_ts)
                d->held_ts = ts;
            break;
        }
        if (record(c, dir, &h, p + used, len - used, d->held_ts ? d->held_ts : ts)) {
            if (!d->held_ts)
                d->held_ts = ts;
            break;
        }
        d->held_ts = 0;
        k->records++;
        d->recs++;
        c->info.bytes[dir] += TLS_REC_HDR + (size_t)h.len;
        used += TLS_REC_HDR + (size_t)h.len;
    }
    return used;
}

void tls_conn_gap(struct tls_conn *c, int dir, uint64_t len, kw_ts ts)
{
    struct tls_dir *d = &c->d[dir];
    c->x->cnt.gaps++;
    c->x->cnt.gap_bytes += len;
    d->lost = true;
    d->hs_len = 0;
    d->hs_skip = false;
    d->held_ts = 0;
    d->lost_bytes += len;
    if (d->pt_len && c->cb.on_gap) {
        c->cb.on_gap(c->cb.user, dir, d->pt_len, ts);
        d->pt_len = 0;
    }
    if (c->ks == KS_OK && !d->dead && d->stage == ST_APP && c->cb.on_gap)
        c->cb.on_gap(c->cb.user, dir, len, ts);
}

void tls_conn_close(struct tls_conn *c, kw_ts ts)
{
    give_up_keys(c);
    done(c, ts);
    wipe_keys(c);
}

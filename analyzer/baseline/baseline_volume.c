/* baseline_volume: volume_spike, an hour with far more requests or bytes
 * than the identity's usual hours, and one encrypted TLS session that
 * moved far more bytes than its sessions do. Hours are judged against the
 * median and MAD of the last BL_VOL_N closed active hours of the same day
 * class (robust: one busy day does not move them); the open hour's
 * thresholds are computed once when it opens, so the per-request test is
 * two compares. A spike hour is quarantined like any novelty, and a
 * heavy-hitter count of the open hour names the endpoint behind it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "baseline_int.h"

#define VOL_MIN_HOURS 8

/* ---- hourly volume ---- */

static void sort_f(float *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        float x = v[i];
        unsigned j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static float median_mad(float *v, unsigned n, float *mad)
{
    sort_f(v, n);
    float med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    float dev[2 * BL_VOL_N];
    for (unsigned i = 0; i < n; i++)
        dev[i] = fabsf(v[i] - med);
    sort_f(dev, n);
    *mad = n % 2 ? dev[n / 2] : (dev[n / 2 - 1] + dev[n / 2]) / 2;
    return med;
}

bool bl_volstat(const struct bl_profile *p, int cls, struct bl_volstat *out)
{
    float r[2 * BL_VOL_N], y[2 * BL_VOL_N];
    unsigned n = 0;
    out->cls = cls;
    for (int c = 0; c < 2; c++) {
        if (p->vol[cls].n >= VOL_MIN_HOURS && c != cls)
            continue; /* the day class has enough hours of its own */
        for (uint32_t i = 0; i < p->vol[c].n; i++) {
            r[n] = (float)p->vol[c].req[i];
            y[n++] = p->vol[c].bytes[i];
        }
    }
    if (p->vol[cls].n < VOL_MIN_HOURS) out->cls = 2;
    out->n = n;
    if (n < VOL_MIN_HOURS) return false;
    out->med = median_mad(r, n, &out->mad);
    out->p10 = r[n / 10];
    out->p90 = r[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
    out->bmed = median_mad(y, n, &out->bmad);
    return true;
}

void bl_open_bucket(struct baseline *b, struct bl_profile *p, int64_t hour, int cls)
{
    const struct bl_sens *s = &bl_sens_tab[b->sens];
    p->cur_hour = hour;
    p->cur_req = 0;
    p->cur_bytes = 0;
    p->cur_alerted = 0;
    p->cur_cls = (uint8_t)cls;
    memset(p->top, 0, sizeof p->top);
    p->active_hours += 1.f;
    struct bl_volstat v;
    p->thr_req = p->thr_bytes = 0;
    if (!bl_volstat(p, cls, &v)) return;
    p->thr_req = fmaxf(fmaxf(v.med + s->vol_k * 1.4826f * v.mad, v.med * s->vol_ratio),
                       v.med + s->vol_min_req);
    p->thr_bytes = fmaxf(fmaxf(v.bmed + s->vol_k * 1.4826f * v.bmad, v.bmed * s->vol_ratio),
                         v.bmed + s->vol_min_bytes);
}

static void ring_add(struct bl_profile *p, int cls, uint32_t req, float bytes)
{
    struct bl_vol *v = &p->vol[cls];
    v->req[v->next] = req;
    v->bytes[v->next] = bytes;
    v->next = (v->next + 1) % BL_VOL_N;
    if (v->n < BL_VOL_N) v->n++;
}

/* Learns the closed hour; a spike hour is quarantined instead, and the
 * held spike hours are learned once they span `quarantine` over two days
 * (a lasting new level of work, not a one-off). */
void bl_close_bucket(struct baseline *b, struct bl_profile *p)
{
    if (p->cur_req == 0) return;
    if (!p->cur_alerted) {
        ring_add(p, p->cur_cls, p->cur_req, (float)p->cur_bytes);
    } else {
        b->st.quarantined++;
        if (p->n_vpend == BL_K_VPEND) {
            memmove(&p->vpend[0], &p->vpend[1], (BL_K_VPEND - 1) * sizeof p->vpend[0]);
            p->n_vpend--;
            b->st.evict_pending++;
        }
        struct bl_vpend *e = &p->vpend[p->n_vpend++];
        memset(e, 0, sizeof *e);
        e->hour_ts = p->cur_hour * BL_HOUR_US;
        e->req = p->cur_req;
        e->bytes = (float)p->cur_bytes;
        e->cls = p->cur_cls;
        kw_ts first = p->vpend[0].hour_ts;
        if (e->hour_ts - first >= b->quarantine &&
            bl_floordiv(e->hour_ts, BL_DAY_US) != bl_floordiv(first, BL_DAY_US)) {
            for (uint32_t i = 0; i < p->n_vpend; i++)
                ring_add(p, p->vpend[i].cls, p->vpend[i].req, p->vpend[i].bytes);
            memset(p->vpend, 0, sizeof p->vpend);
            p->n_vpend = 0;
            b->st.promoted++;
        }
    }
    p->cur_req = 0;
    p->cur_bytes = 0;
}

void bl_hourtop_add(struct bl_profile *p, const char *text)
{
    uint64_t h = bl_hash(text, strlen(text));
    for (int i = 0; i < BL_K_HOURTOP; i++)
        if (p->top[i].count && p->top[i].h == h) {
            p->top[i].count++;
            return;
        }
    for (int i = 0; i < BL_K_HOURTOP; i++)
        if (!p->top[i].count) {
            memset(&p->top[i], 0, sizeof p->top[i]);
            p->top[i].h = h;
            p->top[i].count = 1;
            bl_set_text(p->top[i].text, BL_TXT, text);
            return;
        }
    for (int i = 0; i < BL_K_HOURTOP; i++) /* Misra-Gries: all pay for the newcomer */
        p->top[i].count--;
}

void bl_fmt_count(double v, char *buf, size_t n)
{
    if (v >= 1e9)
        snprintf(buf, n, "%.1fG", v / 1e9);
    else if (v >= 1e7)
        snprintf(buf, n, "%.1fM", v / 1e6);
    else if (v >= 1000) {
        long long x = llround(v);
        if (x >= 1000000)
            snprintf(buf, n, "%lld,%03lld,%03lld", x / 1000000, x / 1000 % 1000, x % 1000);
        else
            snprintf(buf, n, "%lld,%03lld", x / 1000, x % 1000);
    } else
        snprintf(buf, n, "%.0f", v);
}

void bl_check_volume(struct baseline *b, struct bl_obs *o)
{
    struct bl_profile *p = o->p;
    if (o->learning || p->cur_alerted) return;
    bool req = p->thr_req > 0 && (float)p->cur_req > p->thr_req;
    bool by = p->thr_bytes > 0 && (float)p->cur_bytes > p->thr_bytes;
    if (!req && !by) return;
    p->cur_alerted = 1;
    struct bl_volstat v;
    if (!bl_volstat(p, p->cur_cls, &v)) return;
    int ti = 0;
    for (int i = 1; i < BL_K_HOURTOP; i++)
        if (p->top[i].count > p->top[ti].count) ti = i;
    double share = p->cur_req ? 100.0 * p->top[ti].count / p->cur_req : 0;
    char focus[BL_TXT + 32] = "spread over several endpoints";
    if (share >= 25) /* Misra-Gries counts are lower bounds: only a clear leader */
        snprintf(focus, sizeof focus, "%.0f %% to %s", share, p->top[ti].text);
    const char *days = v.cls == 0 ? "on weekdays" : v.cls == 1 ? "on weekends" : "";
    char lo[32], hi[32], now[32], hour[32];
    kw_ts_format_rfc3339(p->cur_hour * BL_HOUR_US, hour, sizeof hour);
    if (req) {
        bl_fmt_count(v.p10, lo, sizeof lo);
        bl_fmt_count(v.p90, hi, sizeof hi);
        bl_fmt_count(p->cur_req, now, sizeof now);
    } else {
        bl_fmt_count(v.bmed, lo, sizeof lo);
        bl_fmt_count(v.bmad, hi, sizeof hi);
        bl_fmt_count((double)p->cur_bytes, now, sizeof now);
    }
    bl_emit(b, o, BL_F_VOLUME, req ? "requests/h" : "bytes/h",
            json_pack("{s:f,s:f,s:f,s:f,s:f,s:f,s:i,s:f,s:f}", "requests_median", v.med,
                      "requests_mad", v.mad, "requests_p10", v.p10, "requests_p90", v.p90,
                      "bytes_median", v.bmed, "bytes_mad", v.bmad, "hours", v.n,
                      "threshold_requests", p->thr_req, "threshold_bytes", p->thr_bytes),
            json_pack("{s:I,s:I,s:s,s:s,s:f}", "requests", (json_int_t)p->cur_req, "bytes",
                      (json_int_t)p->cur_bytes, "hour", hour, "top_endpoint", p->top[ti].text,
                      "top_share", share),
            req ? "%s usually %s-%s requests/h %s; %s in the hour from %s so far, %s"
                : "%s usually %s bytes/h (MAD %s) %s; %s bytes in the hour from %s so far, %s",
            p->key, lo, hi, days, now, hour, focus);
}

/* ---- one TLS session ---- */

/* volume_spike of one encrypted session: the bytes it moved against the
 * identity's sessions (baseline.h). Sessions are bucketed by log2 of their
 * bytes, so the test is "this many powers of two beyond where 99 % of its
 * sessions end", which needs no per-session memory and is not moved by one
 * large transfer among thousands. */
void baseline_observe_session(struct baseline *b, const struct kw_txn *t, const char *tz,
                              void (*emit_fn)(void *user, struct alert_finding *f), void *user)
{
    long i = t->identity.id[0] ? bl_find(b, t->identity.id) : -1;
    if (i < 0) return;
    struct bl_profile *p = &b->p[i];
    uint64_t bytes = t->req_len + t->resp_len;
    int k = bytes ? 63 - __builtin_clzll(bytes) : 0;
    if (k >= BL_SESS_B) k = BL_SESS_B - 1;
    static const int margin[] = {4, 3, 2}; /* low, medium, high: 16x, 8x, 4x */
    if (!bl_in_learning(b, p, t->ts) && p->n_sess >= 20.f && bytes >= (1u << 20)) {
        float cum = 0, need = 0.99f * p->n_sess;
        int m = 0;
        for (; m < BL_SESS_B - 1; m++)
            if ((cum += p->sess[m]) >= need) break;
        if (k >= m + margin[b->sens]) {
            struct bl_obs o = {.t = t, .p = p, .tz = tz, .emit = emit_fn, .user = user};
            bl_local_time(b, &o, tz);
            char got[32], up[32], cs[32], sc[32], subj[300];
            bl_fmt_count((double)bytes, got, sizeof got);
            bl_fmt_count((double)((uint64_t)2 << m), up, sizeof up);
            bl_fmt_count((double)t->req_len, cs, sizeof cs);
            bl_fmt_count((double)t->resp_len, sc, sizeof sc);
            snprintf(subj, sizeof subj, "TLS session to %s",
                     t->tls.sni[0] ? t->tls.sni : "(no SNI)");
            bl_emit(b, &o, BL_F_VOLUME, subj,
                    json_pack("{s:I,s:i}", "session_bytes_p99_below",
                              (json_int_t)((uint64_t)2 << m), "sessions", (int)p->n_sess),
                    json_pack("{s:I,s:I,s:I}", "bytes", (json_int_t)bytes, "to_server",
                              (json_int_t)t->req_len, "to_client", (json_int_t)t->resp_len),
                    "%s moved %s bytes in one encrypted TLS session to %s (%s sent, %s received); "
                    "99 %% of its %.0f sessions moved less than %s",
                    p->key, got, t->tls.sni[0] ? t->tls.sni : "(no SNI)", cs, sc, p->n_sess, up);
        }
    }
    p->sess[k] += 1.f;
    p->n_sess += 1.f;
    if (p->n_sess > 10000.f) { /* old sessions weigh less, and floats stay exact */
        p->n_sess = 0;
        for (int j = 0; j < BL_SESS_B; j++)
            p->n_sess += (p->sess[j] *= 0.5f);
    }
    b->dirty[i] = 1;
}

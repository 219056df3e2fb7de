/* baseline_clients: the software that holds the identity's credential.
 * User agents are learned for display (baseline show) and raise nothing,
 * since any client can send any User-Agent; new_client reports a TLS
 * client fingerprint (JA4) never seen for the identity, which the other
 * end cannot choose as freely: another program or another machine's TLS
 * stack is using the credential or certificate. */
#include <stdio.h>
#include <string.h>

#include "baseline_int.h"

void bl_learn_agent(struct baseline *b, struct bl_profile *p, const char *ua)
{
    if (!ua[0]) return;
    uint64_t h = bl_hash(ua, strlen(ua));
    uint32_t i;
    for (i = 0; i < p->n_ua && p->ua[i].h != h; i++)
        ;
    if (i == p->n_ua) {
        if (p->n_ua == BL_K_UA) {
            i = bl_min_slot(&p->ua[0].count, sizeof p->ua[0], p->n_ua);
            b->st.evict_agent++;
        } else {
            p->n_ua++;
        }
        memset(&p->ua[i], 0, sizeof p->ua[i]);
        p->ua[i].h = h;
        bl_set_text(p->ua[i].text, BL_TXT, ua);
    }
    p->ua[i].count += 1.f;
}

/* new_client: a TLS client fingerprint (JA4 of the ClientHello) never
 * seen for the identity after its learning period: another program, or
 * another machine's TLS stack, holds the identity's credential or
 * certificate. Learned at once (one alert per new client); the table keeps
 * the BL_K_CLIENT most used, the least used one is forgotten. */
void bl_check_client(struct baseline *b, struct bl_obs *o)
{
    const char *ja4 = o->t->tls.ja4;
    struct bl_profile *p = o->p;
    if (!ja4[0]) return;
    uint64_t h = bl_hash(ja4, strlen(ja4));
    uint32_t victim = 0;
    for (uint32_t i = 0; i < p->n_client; i++) {
        if (p->client[i].h == h) {
            p->client[i].count++;
            p->client[i].last_day = (int32_t)o->local_day;
            return;
        }
        if (p->client[i].count < p->client[victim].count) victim = i;
    }
    if (!o->learning && p->n_client) {
        char known[4 * 48 + 16] = "";
        size_t k = 0;
        for (uint32_t i = 0; i < p->n_client && i < 4; i++)
            k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "",
                                  p->client[i].text);
        bl_emit(
            b, o, BL_F_CLIENT, ja4,
            json_pack("{s:s,s:i}", "known_clients", known, "count", p->n_client),
            json_pack("{s:s,s:s}", "ja4", ja4, "sni", o->t->tls.sni),
            "%s connected with a TLS client never seen for it (JA4 %s) to %s%s; it used %u other "
            "client%s so far",
            bl_who(o), ja4, o->t->tls.sni[0] ? o->t->tls.sni : "(no SNI)",
            o->t->flags & KW_TXN_F(TLS_SESSION) ? " in an encrypted TLS session" : "", p->n_client,
            p->n_client == 1 ? "" : "s");
    }
    struct bl_client *c =
        p->n_client < BL_K_CLIENT ? &p->client[p->n_client++] : &p->client[victim];
    memset(c, 0, sizeof *c);
    c->h = h;
    c->count = 1;
    c->last_day = (int32_t)o->local_day;
    bl_set_text(c->text, sizeof c->text, ja4);
}

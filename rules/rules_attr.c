/* rules_attr: attribution, credential -> identity. The one thing to know:
 * the index is one open-addressing hash table of string keys built at load
 * ("f:<sha256 hex>", "b:<basic user>", "j:<iss>\x1f<sub>", "c:<client_id>",
 * "x:<client certificate sha256 hex>", "s:<client certificate subject>",
 * and "i:<identity id>"), read-only afterwards, so a lookup is O(1) and
 * needs no lock however many identities there are. Keys come from the
 * rules, not the network, so chains cannot be grown from outside; the
 * hash is keyed anyway (kw_hash.h), like every table in the process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

#include "kw_hash.h"
#include "kw_str.h"

struct ix_slot {
    char *key;
    size_t id;
};

struct rules_index {
    struct ix_slot *slots;
    size_t cap, n; /* cap is a power of two */
};

static uint64_t key_hash(const char *s)
{
    return kw_siphash(kw_hkey_process(), s, strlen(s));
}

struct rules_index *rules_index_new(size_t cap)
{
    struct rules_index *ix = calloc(1, sizeof *ix);
    size_t c = 64;
    while (c < cap * 2)
        c *= 2;
    if (ix) ix->slots = calloc(c, sizeof *ix->slots);
    if (!ix || !ix->slots) {
        free(ix);
        return NULL;
    }
    ix->cap = c;
    return ix;
}

void rules_index_free(struct rules_index *ix)
{
    if (!ix) return;
    for (size_t i = 0; i < ix->cap; i++)
        free(ix->slots[i].key);
    free(ix->slots);
    free(ix);
}

static struct ix_slot *ix_find(const struct rules_index *ix, const char *key)
{
    size_t mask = ix->cap - 1;
    for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask)
        if (!ix->slots[i].key || !strcmp(ix->slots[i].key, key)) return &ix->slots[i];
}

static bool ix_grow(struct rules_index *ix)
{
    struct rules_index big = {calloc(ix->cap * 2, sizeof *ix->slots), ix->cap * 2, ix->n};
    if (!big.slots) return false;
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->slots[i].key) *ix_find(&big, ix->slots[i].key) = ix->slots[i];
    free(ix->slots);
    *ix = big;
    return true;
}

size_t rules_index_put(struct rules_index *ix, const char *key, size_t id)
{
    if ((ix->n + 1) * 2 > ix->cap && !ix_grow(ix)) return RULES_NOMEM_ID;
    struct ix_slot *s = ix_find(ix, key);
    if (s->key) return s->id;
    s->key = strdup(key);
    if (!s->key) return RULES_NOMEM_ID;
    s->id = id;
    ix->n++;
    return RULES_NO_ID;
}

size_t rules_index_get(const struct rules_index *ix, const char *key)
{
    if (!ix) return RULES_NO_ID;
    const struct ix_slot *s = ix_find(ix, key);
    return s->key ? s->id : RULES_NO_ID;
}

void rules_cred_key(enum rules_cred_match kind, const char *a, const char *b, char *out, size_t len)
{
    static const char pre[] = {'f', 'b', 'j', 'c', 'x', 's'};
    char *e = out + len;
    if (kind == RULES_CM_JWT) /* "j:iss\x1fsub" */
        kw_stpecpy(kw_stpechr(kw_stpecpy(kw_stpecpy(out, e, "j:"), e, a), e, '\x1f'), e,
                   b ? b : "");
    else /* "f:value" */
        kw_stpecpy(kw_stpechr(kw_stpechr(out, e, pre[kind]), e, ':'), e, a);
}

static const struct rules_identity *by_key(const struct rules_model *m, const char *key)
{
    size_t i = rules_index_get(m->index, key);
    return i < m->n_identities ? &m->identities[i] : NULL;
}

const struct rules_identity *rules_find_identity(const struct rules_model *m, const char *id)
{
    char key[80];
    kw_stpecpy(kw_stpecpy(key, key + sizeof key, "i:"), key + sizeof key, id);
    return by_key(m, key);
}

/* rules_attribute, saying which form of the credential matched (how: a
 * kw_identity_ref.via name). */
static const struct rules_identity *attribute_how(const struct rules_model *m,
                                                  const struct kw_cred *c, const char **how)
{
    char key[600];
    const struct rules_identity *id;
    if (!m || !c || c->kind == KW_CRED_NONE) return NULL;
    if (c->kind == KW_CRED_CLIENT_CERT) {
        if (!strncmp(c->fingerprint, "sha256:", 7)) {
            rules_cred_key(RULES_CM_CERT_SHA256, c->fingerprint + 7, NULL, key, sizeof key);
            *how = "credential";
            if ((id = by_key(m, key))) return id;
        }
        rules_cred_key(RULES_CM_CERT_SUBJECT, c->cert_subject, NULL, key, sizeof key);
        *how = "cert_subject";
        return c->cert_subject[0] ? by_key(m, key) : NULL;
    }
    if (c->kind == KW_CRED_BASIC) {
        rules_cred_key(RULES_CM_BASIC_USER, c->basic_user, NULL, key, sizeof key);
        *how = "basic_user";
        if (c->basic_user[0] && (id = by_key(m, key))) return id;
    }
    if (!strncmp(c->fingerprint, "sha256:", 7)) {
        rules_cred_key(RULES_CM_SHA256, c->fingerprint + 7, NULL, key, sizeof key);
        *how = "credential";
        if ((id = by_key(m, key))) return id;
    }
    if (c->kind == KW_CRED_JWT) {
        if (c->jwt.iss[0] && c->jwt.sub[0]) {
            rules_cred_key(RULES_CM_JWT, c->jwt.iss, c->jwt.sub, key, sizeof key);
            *how = "jwt";
            if ((id = by_key(m, key))) return id;
        }
        if (c->jwt.client_id[0]) {
            rules_cred_key(RULES_CM_CLIENT_ID, c->jwt.client_id, NULL, key, sizeof key);
            *how = "client_id";
            if ((id = by_key(m, key))) return id;
        }
    }
    return NULL;
}

const struct rules_identity *rules_attribute(const struct rules_model *m, const struct kw_cred *c)
{
    const char *how = "";
    return attribute_how(m, c, &how);
}

const struct rules_identity *rules_attribute_source(const struct rules_model *m,
                                                    const struct kw_addr *src)
{
    const struct rules_identity *found = NULL;
    if (!m || !src || !src->family) return NULL;
    for (size_t i = 0; i < m->n_identities; i++) {
        const struct rules_identity *id = &m->identities[i];
        if (!id->n_sources || !rules_sources_allow(id, src)) continue;
        if (found) return NULL; /* not unique: no one */
        found = id;
    }
    return found;
}

void rules_identity_ref_fill(const struct rules_identity *id, struct kw_identity_ref *ref)
{
    memset(ref, 0, sizeof *ref);
    if (!id) return;
    /* per attributed transaction: no printf (snprintf here was ~3 % of the
     * packet thread with rules, issue 13); the same cut texts */
    kw_stpecpy(ref->id, ref->id + sizeof ref->id, id->id);
    kw_stpecpy(ref->name, ref->name + sizeof ref->name, id->name);
    kw_stpecpy(ref->kind, ref->kind + sizeof ref->kind, id->kind);
}

const struct rules_identity *rules_attribute_txn(const struct rules_model *m, struct kw_txn *t)
{
    const char *how = "";
    const struct rules_identity *id = attribute_how(m, &t->cred, &how);
    rules_identity_ref_fill(id, &t->identity);
    if (id) kw_stpecpy(t->identity.via, t->identity.via + sizeof t->identity.via, how);
    return id;
}

/* fuzz_cred: credential extraction and JWT decoding over arbitrary bytes.
 * Input: a header value, then '\n', then a raw request target (no '\n':
 * the whole input is the value and the target is "/?api_key=" + input).
 * The value is tried as Authorization, as X-API-Key, as a Cookie (with
 * a config that looks for cookie "session") and as a DPoP proof (RFC 9449,
 * with "DPoP <value>" as the Authorization), and jwt_decode runs over the
 * raw bytes. Checked invariants: every output string is NUL-terminated
 * inside its field, a fingerprint is "" or "sha256:" + 64 hex, and an API
 * key never reappears in the hint or user name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cred.h"
#include "dpop.h"
#include "jwt.h"
#include "kw_exact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_cred(const struct kw_cred *c)
{
    if (c->kind > KW_CRED_OTHER || !memchr(c->source, 0, sizeof c->source) ||
        !memchr(c->fingerprint, 0, sizeof c->fingerprint) || !memchr(c->hint, 0, sizeof c->hint) ||
        !memchr(c->basic_user, 0, sizeof c->basic_user) ||
        !memchr(c->jwt.iss, 0, sizeof c->jwt.iss) || !memchr(c->jwt.sub, 0, sizeof c->jwt.sub) ||
        !memchr(c->jwt.aud, 0, sizeof c->jwt.aud) ||
        !memchr(c->jwt.client_id, 0, sizeof c->jwt.client_id) ||
        !memchr(c->jwt.alg, 0, sizeof c->jwt.alg))
        abort();
    size_t fl = strlen(c->fingerprint);
    if (fl != 0 && (fl != 71 || strncmp(c->fingerprint, "sha256:", 7) != 0 ||
                    strspn(c->fingerprint + 7, "0123456789abcdef") != 64))
        abort();
    if ((c->kind == KW_CRED_NONE) != (fl == 0)) abort();
    const struct kw_dpop *d = &c->dpop;
    if (d->state > KW_DPOP_BAD || !memchr(d->htm, 0, sizeof d->htm) ||
        !memchr(d->htu, 0, sizeof d->htu) || !memchr(d->jkt, 0, sizeof d->jkt) ||
        !memchr(d->ath, 0, sizeof d->ath) || !memchr(d->jti, 0, sizeof d->jti) ||
        !memchr(d->error, 0, sizeof d->error) || !memchr(c->jwt.scope, 0, sizeof c->jwt.scope) ||
        !memchr(c->jwt.cnf_jkt, 0, sizeof c->jwt.cnf_jkt))
        abort();
    if (d->sig_valid && d->state != KW_DPOP_PARSED) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    /* value, names and target each in an allocation of exactly their length
     * (kw_exact.h): a read past one is an ASan report */
    size_t vlen = nl ? (size_t)(nl - p) : size;
    uint8_t *vbuf = kw_exact_dup(p, vlen);
    struct kw_slice value = {(const char *)vbuf, vlen};
    char *tbuf = NULL;
    struct kw_slice target;
    if (nl) {
        target = (struct kw_slice){nl + 1, size - value.len - 1};
    } else {
        tbuf = malloc(size + 10);
        if (!tbuf) abort();
        memcpy(tbuf, "/?api_key=", 10);
        memcpy(tbuf + 10, p, size);
        target = (struct kw_slice){tbuf, size + 10};
    }
    struct cred_config def, ck;
    cred_config_default(&def);
    memset(&ck, 0, sizeof ck);
    if (cred_config_add(&ck, CRED_SRC_COOKIE, "session") != KW_E_OK ||
        cred_config_add(&ck, CRED_SRC_QUERY, "access_token") != KW_E_OK)
        abort();
    static const char *const names[] = {"Authorization", "X-API-Key", "Cookie"};
    struct kw_cred c;
    struct cred_stats st = {0};
    for (size_t i = 0; i < 3; i++) {
        uint8_t *nbuf = kw_exact_dup(names[i], strlen(names[i]));
        struct kw_hdr h = {{(const char *)nbuf, strlen(names[i])}, value};
        cred_extract_ex(i == 2 ? &ck : &def, &h, 1, target, &c, &st);
        free(nbuf);
        check_cred(&c);
        if (i == 1 && c.kind == KW_CRED_API_KEY && value.len >= 12 &&
            (memmem(c.hint, strlen(c.hint), value.p, value.len) ||
             memmem(c.basic_user, strlen(c.basic_user), value.p, value.len)))
            abort();
    }
    struct kw_jwt_claims j;
    jwt_decode(p, size, &j);
    /* the value as a DPoP proof, the same bytes as a DPoP-bound token */
    size_t al = value.len + 5;
    char *authz = malloc(al ? al : 1);
    if (authz) {
        memcpy(authz, "DPoP ", 5);
        memcpy(authz + 5, value.p, value.len);
        struct kw_hdr h[2] = {{{"Authorization", 13}, {authz, al}}, {{"DPoP", 4}, value}};
        cred_extract_ex(&def, h, 2, target, &c, &st);
        check_cred(&c);
        free(authz);
        dpop_thread_cleanup(); /* keep the fuzzer's leak check quiet */
    }
    free(tbuf);
    free(vbuf);
    return 0;
}

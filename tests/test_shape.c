/* Tests of segment shapes (analyzer/path/shape.c): ids the way services
 * mint them are strong, and route words taken from public API specs
 * (tests/data/apis/apis.jsonl, every literal segment of 281 APIs) are
 * not, but for the listed few this classifier gets wrong on purpose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "kw_exact.h"
#include "shape.h"

struct shape_case {
    const char *in;
    enum shape_kind k;
};

static const struct shape_case cases[] = {
    {"754865", SHAPE_INT},
    {"550e8400-e29b-41d4-a716-446655440000", SHAPE_UUID},
    {"507f1f77bcf86cd799439011", SHAPE_HEX}, /* Mongo ObjectId */
    {"deadbeef01", SHAPE_HEX},
    {"01ARZ3NDEKTSV4RRFFQ69G5FAV", SHAPE_ULID},
    {"2026-03-01", SHAPE_DATE},
    {"2026-03", SHAPE_DATE},
    {"2026-03-01T10:00:00Z", SHAPE_DATE},
    {"2026-03-01T10:00:00.123+01:00", SHAPE_DATE},
    {"anna.smith@acme.example", SHAPE_EMAIL},
    {"anna%40acme.example", SHAPE_EMAIL},
    {"INV-2026-754865", SHAPE_PREFIXED},
    {"SKU-60346", SHAPE_PREFIXED},
    {"cus_NffrFeUfNV2Hib", SHAPE_PREFIXED},
    {"ope_eacnkO6kubkwKFP", SHAPE_PREFIXED}, /* few case changes, not words */
    {"fil_mozbgXSHLqzdppjQGk", SHAPE_PREFIXED},
    {"cer_uxQkwxumqVaen9OZAS", SHAPE_PREFIXED}, /* every piece has a vowel */
    {"sub_YPLAblUBBBvNLWReknJyf", SHAPE_PREFIXED},
    {"red-east-90", SHAPE_PREFIXED},
    {"i-0abc123def4567890", SHAPE_PREFIXED},
    {"TQbxUHKuVvEI8VazN2Tac5", SHAPE_TOKEN},
    {"dQw4w9WgXcQ", SHAPE_TOKEN},
    {"C024BE91L", SHAPE_TOKEN},
    {"k3j9x8q2", SHAPE_TOKEN},
    {"ORD12345", SHAPE_TOKEN},
    {"v1", SHAPE_VERSION},
    {"v1beta1", SHAPE_VERSION},
    {"v2.7", SHAPE_VERSION},
    {"2.0", SHAPE_VERSION},
    {"1.2.3", SHAPE_VERSION},
    /* words: route words of public APIs, slugs, short codes */
    {"me", SHAPE_WORD},
    {"export", SHAPE_WORD},
    {"acme-web", SHAPE_WORD},
    {"us-east-1", SHAPE_WORD},
    {"europe-west1-b", SHAPE_WORD},
    {"resourceGroups", SHAPE_WORD},
    {"Microsoft.Compute", SHAPE_WORD},
    {"getIamPolicy", SHAPE_WORD},
    {"scoreboardV2", SHAPE_WORD},
    {"SetLockState", SHAPE_WORD},
    {"GetBungieNetUserById", SHAPE_WORD},
    {"getHTTPSProxy", SHAPE_WORD},
    {"XMLHttpRequest", SHAPE_WORD},
    {"oauth2", SHAPE_WORD},
    {"x509", SHAPE_WORD},
    {"word2vec-neologd-jawiki", SHAPE_WORD},
    {"api-v2", SHAPE_WORD},
    {"deadbeef", SHAPE_WORD},
    {"", SHAPE_WORD},
    {"a--b", SHAPE_WORD},
    {"x-", SHAPE_WORD},
    {"New%20York", SHAPE_WORD},
};

/* The shape functions over exact-size heap copies (kw_exact.h): segments
 * are slices of a path with more bytes after them, and ASan must see a
 * read past the slice. */
static enum shape_kind classify_x(const char *s, size_t n)
{
    uint8_t *b = kw_exact_dup(s, n);
    enum shape_kind k = shape_classify((const char *)b, n);
    free(b);
    return k;
}

static size_t split_x(const char *s, size_t n, size_t *pre)
{
    uint8_t *b = kw_exact_dup(s, n);
    size_t c = shape_split((const char *)b, n, pre);
    free(b);
    return c;
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum shape_kind k = classify_x(cases[i].in, strlen(cases[i].in));
        if (k != cases[i].k)
            fail_msg("\"%s\": %s, want %s", cases[i].in, shape_kind_name(k),
                     shape_kind_name(cases[i].k));
    }
    assert_true(shape_is_strong(SHAPE_INT));
    assert_false(shape_is_strong(SHAPE_WORD));
    assert_false(shape_is_strong(SHAPE_VERSION));
    assert_false(shape_is_strong(SHAPE_NAME));
}

struct split_case {
    const char *in;
    size_t pre, core;
};

static const struct split_case splits[] = {
    {"123.json", 0, 3},   {"report.pdf", 0, 6},
    {"abc:cancel", 0, 3}, {"Updates('x1')", 9, 2},
    {"Orders(42)", 7, 2}, {"v1.2", 0, 4},
    {"a@b.com", 0, 7},    {"2026-03-01T10:00:00Z", 0, 20},
    {"x.toolong", 0, 9},  {"Orders()", 0, 8},
    {"name.2", 0, 6},
};

static void test_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        size_t pre = 99, core = split_x(splits[i].in, strlen(splits[i].in), &pre);
        if (pre != splits[i].pre || core != splits[i].core)
            fail_msg("\"%s\": pre %zu core %zu, want %zu %zu", splits[i].in, pre, core,
                     splits[i].pre, splits[i].core);
    }
}

/* Every literal segment of the specs: the strong ones are exactly the
 * versions written as dates or numbers (handled by position in the route
 * learner) and these few. */
static void test_spec_literals(void **state)
{
    (void)state;
    static const char *const known[] = {"type_point_geomag_iaga2002"};
    char path[600];
    snprintf(path, sizeof path, "%s/data/apis/apis.jsonl", KW_TEST_DATA);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0, words = 0, strong = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "endpoints"), i, e)
        {
            const char *t = json_string_value(json_object_get(e, "template"));
            for (const char *s = t; s && *s;) {
                while (*s == '/')
                    s++;
                size_t n = strcspn(s, "/");
                if (n && !memchr(s, '{', n)) {
                    size_t pre, core = split_x(s, n, &pre);
                    enum shape_kind k = classify_x(s + pre, core);
                    words++;
                    bool ok = !shape_is_strong(k) || k == SHAPE_DATE || k == SHAPE_INT;
                    for (size_t q = 0; !ok && q < sizeof known / sizeof known[0]; q++)
                        ok = strlen(known[q]) == n && !memcmp(known[q], s, n);
                    if (!ok)
                        fail_msg("route word \"%.*s\" classified %s", (int)n, s,
                                 shape_kind_name(k));
                    strong += shape_is_strong(k);
                }
                s += n;
            }
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    printf("# %zu literal segments, %zu strong (dates and numbers used as versions)\n", words,
           strong);
    assert_true(words > 15000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_spec_literals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

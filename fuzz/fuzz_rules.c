/* fuzz_rules: arbitrary bytes as a rules file and as a config, loaded from
 * memory with rules_load_mem. The loader must never crash, leak or read
 * out of bounds, whatever the YAML; problems belong in the diag. The first
 * byte picks rules file or config, so both walkers are fuzzed. The parse
 * runs in this process (kw_yaml isolation off): the fuzzer must see
 * libfyaml's own crashes, which in keywarden end in a child process. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kw_yaml.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    kw_yaml_set_isolation(false);
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    bool as_config = size && data[0] == '#';
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    enum kw_err e = as_config ? rules_load_mem("fuzz.yaml", text, NULL, NULL, &m, &d)
                              : rules_load_mem(NULL, NULL, "fuzz.yaml", text, &m, &d);
    if (e == KW_E_OK && m) {
        struct kw_cred c = {.kind = KW_CRED_BASIC};
        strcpy(c.basic_user, "a");
        (void)rules_attribute(m, &c);
        for (size_t i = 0; i < m->n_identities; i++) {
            const struct rules_pattern *p;
            (void)rules_schedule_allows(&m->identities[i].schedule, m->identities[i].tz,
                                        KW_TS_SEC(1767225600));
            (void)rules_scope_check(&m->identities[i], "GET", "h", "/a/b", &p);
        }
    }
    FILE *null = fopen("/dev/null", "w");
    if (null) {
        rules_diag_print(&d, null);
        fclose(null);
    }
    rules_diag_free(&d);
    rules_model_free(m);
    free(text);
    return 0;
}

/* fuzz_tls_keylog: the NSS key log reader, one line per input line, into
 * a table of 4 sessions (so eviction runs), then lookups of what the
 * lines named. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_keylog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tls_keylog *kl;
    if (tls_keylog_new(4, &kl) != KW_E_OK)
        abort();
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        /* an exact-size copy per line: ASan sees any read past it */
        size_t n = i - start;
        char *line = malloc(n ? n : 1);
        if (!line)
            abort();
        memcpy(line, data + start, n);
        int r = tls_keylog_add_line(kl, line, n);
        if (r < -1 || r > 1)
            abort();
        free(line);
        start = i + 1;
    }
    uint8_t cr[32] = {0};
    memcpy(cr, data, size < 32 ? size : 32);
    struct tls_secrets s;
    tls_keylog_lookup(kl, cr, &s);
    tls_keylog_destroy(kl);
    return 0;
}

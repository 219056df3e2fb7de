/* fuzz_tls_hs: the handshake message parsers (ClientHello, ServerHello,
 * Certificate in both layouts), the X.509 field extraction and the four
 * fingerprints, on one message body. Byte 0 picks the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_fp.h"
#include "tls_hs.h"
#include "tls_x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    char ja[TLS_JA4_LEN], str[TLS_JA3_STR_MAX], raw[4096], md5[33];
    switch (data[0] % 4) {
    case 0: {
        struct tls_client_hello h;
        if (tls_parse_client_hello(p, n, &h) == 0) {
            tls_ja4(&h, false, ja);
            tls_ja4(&h, true, ja);
            tls_ja4_raw(&h, true, raw, sizeof raw);
            tls_ja3(&h, str, sizeof str, md5);
            if (strlen(ja) >= TLS_JA4_LEN || strlen(md5) != 32)
                abort();
        }
        break;
    }
    case 1: {
        struct tls_server_hello h;
        if (tls_parse_server_hello(p, n, &h) == 0) {
            tls_ja4s(&h, ja);
            tls_ja3s(&h, str, sizeof str, md5);
        } else {
            memset(&h, 0, sizeof h);
        }
        /* the same bytes as a TLS 1.3 EncryptedExtensions body */
        if (tls_parse_encrypted_extensions(p, n, &h) == 0 && h.has_alpn &&
            h.alpn.len > sizeof h.alpn.b)
            abort();
        break;
    }
    case 2:
    case 3: {
        const uint8_t *leaf;
        size_t ll;
        unsigned count;
        if (tls_parse_certificate(p, n, data[0] % 4 == 3, &leaf, &ll, &count) == 0 && count) {
            if (leaf < p || leaf + ll > p + n)
                abort();
            struct tls_cert c;
            tls_x509_parse(leaf, ll, &c);
        } else {
            struct tls_cert c; /* raw DER straight in, too */
            tls_x509_parse(p, n, &c);
        }
        break;
    }
    }
    return 0;
}

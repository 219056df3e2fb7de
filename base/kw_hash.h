/* kw_hash: the one keyed hash for tables whose keys come from traffic.
 *
 * Every hash table keyed by something an attacker can choose (addresses,
 * ports, credential fingerprints, paths, client randoms) places entries by
 * SipHash-1-3 under a 128-bit key drawn from getrandom(2), so nobody outside
 * the process can compute which inputs share a bucket and grow one chain
 * (hash flooding). SipHash-1-3 is the variant Python, Rust and the Linux
 * kernel use for hash tables: a PRF strong enough that bucket collisions
 * cannot be predicted without the key, and fast on short keys. It is not
 * used as a MAC or fingerprint anywhere (those are SHA-256). */
#ifndef KW_HASH_H
#define KW_HASH_H

#include <stddef.h>
#include <stdint.h>

struct kw_hkey {
    uint64_t k0, k1;
};

/* Incremental SipHash-1-3 (for keys built field by field). */
struct kw_sip {
    uint64_t v0, v1, v2, v3;
    uint64_t tail; /* bytes not yet compressed, little-endian */
    size_t len;    /* total bytes so far */
};

void kw_sip_init(struct kw_sip *s, const struct kw_hkey *k);
void kw_sip_update(struct kw_sip *s, const void *p, size_t n);
uint64_t kw_sip_final(const struct kw_sip *s);

/* One-shot: the same value as init + update + final. */
uint64_t kw_siphash(const struct kw_hkey *k, const void *p, size_t n);

/* A fresh key from getrandom(2) (retried on EINTR; /dev/urandom if the
 * call is missing). Never a constant: if both fail, the key mixes the
 * clock, pid and addresses, and kw_hkey_weak() says so. */
struct kw_hkey kw_hkey_random(void);

/* The process key: drawn once, on first use, shared by tables that live
 * only in memory (each process, each run, a new key). */
const struct kw_hkey *kw_hkey_process(void);

/* True when some key had to come from the fallback instead of the kernel. */
int kw_hkey_weak(void);

#endif

/* sim_rng: the simulator's only source of randomness, xoshiro256** seeded
 * through splitmix64 (Blackman & Vigna). The one thing to know: every random
 * choice in kwsim comes from a struct sim_rng derived from the seed (never
 * rand(), time() or addresses), so the same seed gives byte-identical output;
 * sub-streams (per identity and day) are derived with sim_rng_fork so that
 * switching one incident on does not reshuffle everybody else's traffic. */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdint.h>
#include <string.h>

struct sim_rng {
    uint64_t s[4];
};

static inline uint64_t sim_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = sim_splitmix64(&x);
}

static inline uint64_t sim_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t sim_rng_u64(struct sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = sim_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sim_rotl(s[3], 45);
    return res;
}

/* Uniform in [0, n) (n > 0); the tiny modulo bias is irrelevant here. */
static inline uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
    return n ? sim_rng_u64(r) % n : 0;
}

/* Uniform in [lo, hi]. */
static inline int64_t sim_rng_range(struct sim_rng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo) return lo;
    return lo + (int64_t)sim_rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* Uniform double in [0, 1). */
static inline double sim_rng_unit(struct sim_rng *r)
{
    return (double)(sim_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

static inline int sim_rng_chance(struct sim_rng *r, double p)
{
    return p > 0 && sim_rng_unit(r) < p;
}

/* FNV-1a of a string: stable key material for sub-streams. */
static inline uint64_t sim_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

/* A new independent stream from a parent seed and a key. */
static inline void sim_rng_fork(struct sim_rng *child, uint64_t seed, uint64_t key)
{
    uint64_t x = seed ^ sim_rotl(key, 17);
    sim_rng_seed(child, sim_splitmix64(&x) ^ key);
}

#endif

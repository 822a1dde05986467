/*
 * rng.c — the seeded generator of libfaults: xoshiro256** with named streams.
 *
 * Every random choice a run makes (whether an armed point fires, how a power
 * cut treats an unsynced write) draws from a stream named after what it
 * decides, so adding one fault never shifts the choices of another. Pure
 * computation: no globals, no clock, no libc random(); depends on nothing.
 */
#include "faults/faults.h"

#include <assert.h>

/* Draws below() may reject before giving up; each rejection has p < 1/2. */
#define RNG_REJECTS_MAX 128

#define FNV1A64_OFFSET 0xcbf29ce484222325ull
#define FNV1A64_PRIME  0x100000001b3ull

static uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_fnv1a64(const char *text)
{
    uint64_t hash = FNV1A64_OFFSET;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        hash ^= *p;
        hash *= FNV1A64_PRIME;
    }
    return hash;
}

/* splitmix64: spreads one 64-bit value over xoshiro's 256 bits of state. */
static uint64_t rng_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void faults_rng_seed(struct faults_rng *rng, uint64_t seed, const char *stream)
{
    assert(rng != NULL);
    assert(stream != NULL);
    /* Mix the seed before combining so that (seed, stream) pairs whose raw
     * values happen to XOR alike do not share a sequence. */
    uint64_t mixer = seed;
    uint64_t key = rng_splitmix64(&mixer) ^ rng_fnv1a64(stream);
    for (int i = 0; i < 4; i++) {
        rng->s[i] = rng_splitmix64(&key);
    }
    /* xoshiro's only bad state; splitmix64 never yields four zeros. */
    assert((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) != 0);
}

uint64_t faults_rng_next(struct faults_rng *rng)
{
    assert(rng != NULL);
    uint64_t *s = rng->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

double faults_rng_unit(struct faults_rng *rng)
{
    /* The top 53 bits fill a double's mantissa exactly: uniform in [0, 1). */
    return (double)(faults_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t faults_rng_below(struct faults_rng *rng, uint64_t n)
{
    assert(n > 0);
    /* Reject the lowest (2^64 mod n) values: what remains is a whole number
     * of copies of [0, n), so the modulo carries no bias. */
    uint64_t threshold = (0 - n) % n;
    for (int tries = 0; tries < RNG_REJECTS_MAX; tries++) {
        uint64_t x = faults_rng_next(rng);
        if (x >= threshold) {
            return x % n;
        }
    }
    assert(!"faults_rng_below: rejected RNG_REJECTS_MAX draws in a row");
    return 0;
}

/* MurmurHash3 x64-128; see murmur3.h for the contract. */
#include "murmur3.h"

#define C1 0x87c37b91114253d5ULL
#define C2 0x4cf5ad432745937fULL

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Final avalanche: every input bit flips each output bit with p ~ 1/2. */
static inline uint64_t avalanche(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static inline uint64_t scramble_lo(uint64_t k) {
    k *= C1;
    k = rotl64(k, 31);
    return k * C2;
}

static inline uint64_t scramble_hi(uint64_t k) {
    k *= C2;
    k = rotl64(k, 33);
    return k * C1;
}

void sgb_murmur3_128(const void *key, size_t len, uint32_t seed, uint64_t out[2]) {
    const uint8_t *data = key;
    const size_t nblocks = len / 16;
    uint64_t h1 = seed, h2 = seed;

    for (size_t i = 0; i < nblocks; i++) {
        const uint8_t *block = data + 16 * i;
        h1 ^= scramble_lo(load_le64(block));
        h1 = rotl64(h1, 27) + h2;
        h1 = h1 * 5 + 0x52dce729;
        h2 ^= scramble_hi(load_le64(block + 8));
        h2 = rotl64(h2, 31) + h1;
        h2 = h2 * 5 + 0x38495ab5;
    }

    /* The 0..15 trailing bytes fill two little-endian words, low word first. */
    const uint8_t *tail = data + 16 * nblocks;
    const size_t rest = len & 15;
    uint64_t lo = 0, hi = 0;
    for (size_t i = 0; i < rest; i++) {
        if (i < 8)
            lo |= (uint64_t)tail[i] << (8 * i);
        else
            hi |= (uint64_t)tail[i] << (8 * (i - 8));
    }
    if (rest > 8) h2 ^= scramble_hi(hi);
    if (rest > 0) h1 ^= scramble_lo(lo);

    h1 ^= (uint64_t)len;
    h2 ^= (uint64_t)len;
    h1 += h2;
    h2 += h1;
    h1 = avalanche(h1);
    h2 = avalanche(h2);
    h1 += h2;
    h2 += h1;
    out[0] = h1;
    out[1] = h2;
}

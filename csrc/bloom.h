/*
 * bloom.h -- the C Bloom filter of squidguard-bloom.
 *
 * A classic Bloom filter sized from an expected number of entries n and a
 * target false-positive rate p, in the manner of Virkki's libbloom but with
 * every size and index in 64 bits, one MurmurHash3 x64-128 call per key,
 * atomic bit setting, and an optional file-backed MAP_SHARED store so that
 * several processes (Squid's helper children) share one filter.
 *
 * Sizing (sgb_bloom_size):
 *   m = ceil(-n ln p / (ln 2)^2) bits.
 *   k* = (m/n) ln 2; k is floor(k*) or ceil(k*) (at least 1), whichever gives
 *   the lower (1 - e^(-kn/m))^k; on a tie the smaller k (fewer memory
 *   touches).  p = 0.01 gives k = 7, p = 0.001 gives k = 10.
 *   The bit array takes ceil(m / 64) * 8 bytes.
 *
 * Probing: (a, b) = MurmurHash3_x64_128(key, seed); with a' = a mod m and
 * b' = 1 + (b mod (m - 1)) (so b' is never 0 mod m), probe i is
 * (a' + i * b') mod m, computed incrementally without overflow (m <= 2^63).
 * Bit x lives in byte x / 8, as bit (x mod 8), least significant first.
 *
 * File format (all integers little-endian; only little-endian hosts build):
 *   0  char[8]  magic "SGBLOOM\x1a"     40 u32 hashes k
 *   8  u32      format version (1)      44 u32 hash seed
 *   12 u32      header size (128)       48 u64 data bytes
 *   16 u64      capacity n              56 u64 checksum of bytes 0..55
 *   24 f64      error rate p            64 u64 entries (mutable counter)
 *   32 u64      bits m                  72 u32 add lock (PID or 0, mutable)
 *                                       76..127 reserved, zero
 *   then the bit array.  The file is exactly 128 + data bytes long.
 *
 * Errors: every function that can fail returns 0 or a negative SGB_E* code;
 * sgb_strerror() gives its text.  On SGB_EOS the C errno is left set.
 * Nothing here writes to stdout or stderr, and nothing exits.
 *
 * Threads and processes: add/check are safe to call concurrently on one
 * filter (bits are set with atomic OR, so no bit is ever lost), and of
 * concurrent adds of one new key exactly one returns 1 (an add that finds
 * a clear bit holds the filter's add lock, a PID word in the header that
 * is taken over when its holder has died); reset, save and free are not
 * safe concurrently and need the caller's exclusion.
 */
#ifndef SGB_BLOOM_H
#define SGB_BLOOM_H

#include <stddef.h>
#include <stdint.h>

/* cdef-begin: everything up to cdef-end is also read by build_ext.py */

#define SGB_OK         0
#define SGB_EPARAM     -1  /* capacity or error rate out of range */
#define SGB_ETOOBIG    -2  /* sizes not representable on this machine */
#define SGB_ENOMEM     -3  /* allocation failed */
#define SGB_EOS        -4  /* a system call failed; see errno */
#define SGB_EMAGIC     -5  /* not a filter file */
#define SGB_EVERSION   -6  /* filter file of an unknown format version */
#define SGB_ECORRUPT   -7  /* header checksum or fields inconsistent */
#define SGB_ETRUNCATED -8  /* file length does not match its header */
#define SGB_EMISMATCH  -9  /* file made with other n, p or seed */
#define SGB_EEXIST     -10 /* file exists and the caller asked for a new one */

#define SGB_HEADER_SIZE    128
#define SGB_FORMAT_VERSION 1
#define SGB_MAX_HASHES     255

typedef struct sgb_bloom sgb_bloom;

struct sgb_bloom_info {
    uint64_t capacity; /* n the filter was sized for */
    double error;      /* target false-positive rate p */
    uint64_t bits;     /* m */
    uint32_t hashes;   /* k */
    uint32_t seed;     /* MurmurHash3 seed */
    uint64_t bytes;    /* size of the bit array */
    uint64_t entries;  /* keys whose add set at least one bit */
    uint64_t bits_set; /* population count of the bit array */
    int shared;        /* 1 when backed by a MAP_SHARED file */
};

/* Text for an SGB_* code (static storage; never NULL). */
const char *sgb_strerror(int code);

/* MurmurHash3 x64-128 (see murmur3.h), exported for known-answer tests. */
void sgb_murmur3_128(const void *key, size_t len, uint32_t seed, uint64_t out[2]);

/*
 * Compute m and k for n entries at rate p without allocating anything.
 * n >= 1; 0 < p < 1.  Returns SGB_EPARAM or SGB_ETOOBIG on refusal.
 */
int sgb_bloom_size(uint64_t capacity, double error, uint64_t *bits, uint32_t *hashes);

/* A zeroed filter in private process memory.  *out is owned by the caller. */
int sgb_bloom_new(uint64_t capacity, double error, uint32_t seed, sgb_bloom **out);

/*
 * A filter stored in the file at path, mapped MAP_SHARED.  An existing file
 * must carry exactly (capacity, error, seed), else SGB_EMISMATCH; capacity 0
 * accepts whatever the file holds.  A missing file is created atomically
 * (temp file + link) when create is non-zero: processes racing to create it
 * all end up sharing the one that won.
 */
int sgb_bloom_open(const char *path, uint64_t capacity, double error, uint32_t seed, int create,
                   sgb_bloom **out);

/* Read a saved filter into private memory (later changes stay private). */
int sgb_bloom_load(const char *path, sgb_bloom **out);

/* Write the filter to path atomically (temp file, fsync, rename). */
int sgb_bloom_save(const sgb_bloom *bloom, const char *path);

/* 1 if all k bits of key are set ("maybe present"), 0 if not. */
int sgb_bloom_check(const sgb_bloom *bloom, const void *key, size_t len);

/* Set key's bits.  1 if this call set at least one bit (new key), else 0. */
int sgb_bloom_add(sgb_bloom *bloom, const void *key, size_t len);

/*
 * Batch forms: the count keys lie back to back in buf, key i being
 * lengths[i] bytes long.  results[i] gets what the single call would
 * return.  The return value is how many results are 1.
 */
uint64_t sgb_bloom_check_many(const sgb_bloom *bloom, const uint8_t *buf, const uint32_t *lengths,
                              size_t count, uint8_t *results);
uint64_t sgb_bloom_add_many(sgb_bloom *bloom, const uint8_t *buf, const uint32_t *lengths,
                            size_t count, uint8_t *results);

/*
 * The same with the count keys in buf[0..len) separated by the byte sep
 * (no lengths array to build).  The caller makes sure that no key holds
 * sep, i.e. that buf holds exactly count - 1 of them.
 */
uint64_t sgb_bloom_check_split(const sgb_bloom *bloom, const uint8_t *buf, size_t len, uint8_t sep,
                               size_t count, uint8_t *results);
uint64_t sgb_bloom_add_split(sgb_bloom *bloom, const uint8_t *buf, size_t len, uint8_t sep,
                             size_t count, uint8_t *results);

/*
 * Where key's bits are, for a copy of the filter kept elsewhere (the shared
 * welcome state on Redis).  With shards == 1 the k bit indexes are those
 * this filter probes (bit x is byte x / 8, bit x mod 8, least significant
 * first; a store that counts bits from the most significant one, as Redis's
 * SETBIT/BITFIELD do, holds the same bytes at offset x ^ 7).  With
 * shards == N > 1 the filter is split into N shards of s = ceil(m / N) bits
 * and all of a key's bits lie in one of them: from the same hash (a, b),
 * the shard is (a / s) mod N and probe i is (a mod s + i * b') mod s with
 * b' = 1 + b mod (s - 1), indexes counted inside the shard.
 * out gets the shard then the k indexes (k + 1 values); returns k, or
 * SGB_EPARAM when shards is 0, or above 1 and above m / 2.
 */
int sgb_bloom_positions(const sgb_bloom *bloom, const void *key, size_t len, uint32_t shards,
                        uint64_t *out);

/* The same for count keys back to back in buf (as sgb_bloom_add_many):
 * key i's k + 1 values go to out[i * (k + 1) ...].  Returns k or SGB_EPARAM. */
int sgb_bloom_positions_many(const sgb_bloom *bloom, const uint8_t *buf, const uint32_t *lengths,
                             size_t count, uint32_t shards, uint64_t *out);

/* Clear every bit and the entry count. */
void sgb_bloom_reset(sgb_bloom *bloom);

/* Fill *info (counts the set bits: O(m / 64)). */
void sgb_bloom_info(const sgb_bloom *bloom, struct sgb_bloom_info *info);

/* Release memory or unmap and close the file.  NULL is a no-op. */
void sgb_bloom_free(sgb_bloom *bloom);

/* cdef-end */

#endif

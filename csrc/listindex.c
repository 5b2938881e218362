/* Lookups in a compiled, memory-mapped blacklist; see listindex.h. */
#include "listindex.h"

#include <string.h>

#include "murmur3.h"

#define SGB_BLOCK        16 /* slots per entry of the blocks array */
#define SGB_SUFFIX_SLOT  16 /* bytes per entry of the suffix table */
#define SGB_MAX_SUFFIXES 255

/* The file is little-endian, like every machine we build for. */
static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

struct table {
    uint64_t nslots;
    uint32_t seed;
    uint32_t nsuffixes;
    const uint8_t *tags;
    const uint8_t *blocks;
    const uint8_t *suffixes;
};

/* The geometry from the header, if the tag, block and suffix arrays fit in the file. */
static int table_of(const uint8_t *base, uint64_t size, struct table *t) {
    if (size < SGB_LIST_HEADER) return -1;
    uint64_t n = rd32(base + 48); /* < 2^32, so nothing below overflows */
    uint32_t nsuffixes = rd32(base + 60);
    if (n == 0 || n % SGB_BLOCK != 0 || nsuffixes > SGB_MAX_SUFFIXES) return -1;
    uint64_t tables = SGB_LIST_HEADER + 2 * n + 4 * (n / SGB_BLOCK);
    if (tables + (uint64_t)SGB_SUFFIX_SLOT * nsuffixes > size) return -1;
    t->nslots = n;
    t->seed = rd32(base + 56);
    t->nsuffixes = nsuffixes;
    t->tags = base + SGB_LIST_HEADER;
    t->blocks = t->tags + 2 * n;
    t->suffixes = base + tables;
    return 0;
}

/* The varint at *off, which moves past it; -1 if it runs past size or 32 bits. */
static int rd_varint(const uint8_t *base, uint64_t size, uint64_t *off, uint32_t *out) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 35; shift += 7) {
        if (*off >= size) return -1;
        uint8_t b = base[(*off)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            if (v > UINT32_MAX) return -1;
            *out = (uint32_t)v;
            return 0;
        }
    }
    return -1;
}

struct record {
    uint64_t key, value; /* offsets */
    uint32_t keylen, valuelen;
    int suffix; /* index into the suffix table, or -1 */
};

static int parse_record(const uint8_t *base, uint64_t size, uint64_t off, struct record *r) {
    uint32_t head, vlen = 0;
    if (rd_varint(base, size, &off, &head) < 0) return -1;
    r->suffix = -1;
    if ((head & 2) != 0) {
        if (off >= size) return -1;
        r->suffix = base[off++];
    }
    if ((head & 1) != 0 && rd_varint(base, size, &off, &vlen) < 0) return -1;
    uint32_t klen = head >> 2;
    if ((uint64_t)klen + vlen > size - off) return -1; /* off <= size here */
    r->key = off;
    r->keylen = klen;
    r->value = off + klen;
    r->valuelen = vlen;
    return 0;
}

int sgb_record_parts(const uint8_t *base, uint64_t size, uint64_t off, uint64_t *key,
                     uint32_t *keylen, uint64_t *value, uint32_t *valuelen) {
    struct record r;
    if (parse_record(base, size, off, &r) < 0) return -1;
    *key = r.key;
    *keylen = r.keylen;
    *value = r.value;
    *valuelen = r.valuelen;
    return 0;
}

/* Whether the record's whole key (with its suffix) is key[0..len). */
static int key_is(const uint8_t *base, const struct table *t, const struct record *r,
                  const char *key, size_t len) {
    if (r->suffix < 0) return r->keylen == len && memcmp(base + r->key, key, len) == 0;
    if ((uint32_t)r->suffix >= t->nsuffixes) return 0;
    const uint8_t *sfx = t->suffixes + SGB_SUFFIX_SLOT * (uint32_t)r->suffix;
    size_t slen = sfx[0];
    if (slen == 0 || slen >= SGB_SUFFIX_SLOT) return 0;
    return len == (size_t)r->keylen + 1 + slen && memcmp(base + r->key, key, r->keylen) == 0 &&
           key[r->keylen] == '.' && memcmp(key + r->keylen + 1, sfx + 1, slen) == 0;
}

/* Offset of the record of the occupied slot i: past those of the occupied
 * slots before it in its block. */
static int64_t slot_record(const uint8_t *base, uint64_t size, const struct table *t, uint64_t i) {
    uint64_t first = i - i % SGB_BLOCK;
    uint64_t off = rd32(t->blocks + 4 * (first / SGB_BLOCK));
    for (uint64_t j = first; j < i; j++) {
        if (rd16(t->tags + 2 * j) == 0) continue;
        struct record r;
        if (parse_record(base, size, off, &r) < 0) return -1;
        off = r.value + r.valuelen;
    }
    return (int64_t)off;
}

int64_t sgb_list_find(const uint8_t *base, uint64_t size, const char *key, size_t len) {
    struct table t;
    if (table_of(base, size, &t) < 0) return -1;
    uint64_t h[2];
    sgb_murmur3_128(key, len, t.seed, h);
    uint16_t tag = (uint16_t)h[0];
    if (tag == 0) tag = 1;
    uint64_t i = ((h[0] >> 32) * t.nslots) >> 32;
    for (uint64_t n = 0; n < t.nslots; n++) {
        uint16_t got = rd16(t.tags + 2 * i);
        if (got == 0) return -1;
        if (got == tag) {
            int64_t off = slot_record(base, size, &t, i);
            struct record r;
            if (off >= 0 && parse_record(base, size, (uint64_t)off, &r) == 0 &&
                key_is(base, &t, &r, key, len))
                return off;
        }
        if (++i == t.nslots) i = 0;
    }
    return -1;
}

int64_t sgb_domain_find(const uint8_t *base, uint64_t size, const char *host, size_t len) {
    for (;;) {
        int64_t off = sgb_list_find(base, size, host, len);
        if (off >= 0) return off;
        const char *dot = memchr(host, '.', len);
        if (dot == NULL) return -1;
        len -= (size_t)(dot + 1 - host);
        host = dot + 1;
    }
}

int64_t sgb_url_find(const uint8_t *base, uint64_t size, const char *s, size_t len) {
    const char *slash = memchr(s, '/', len);
    size_t hostlen = slash ? (size_t)(slash - s) : len;
    int64_t rec = sgb_list_find(base, size, s, hostlen);
    if (rec < 0) return -1;
    struct record host;
    if (parse_record(base, size, (uint64_t)rec, &host) < 0) return -1;
    /* the host's entries: records inside [value, end), never with a suffix */
    uint64_t off = host.value, end = host.value + host.valuelen;
    while (off < end) {
        struct record e;
        if (parse_record(base, end, off, &e) < 0 || e.suffix >= 0) return -1;
        if (e.keylen <= len - hostlen && memcmp(base + e.key, s + hostlen, e.keylen) == 0)
            return (int64_t)off;
        off = e.value + e.valuelen;
    }
    return -1;
}

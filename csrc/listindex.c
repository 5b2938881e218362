/* Lookups in a compiled, memory-mapped blacklist; see listindex.h. */
#include "listindex.h"

#include <string.h>

#include "murmur3.h"

static uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v; /* the file is little-endian, like every machine we build for */
}

static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

int64_t sgb_list_find(const uint8_t *base, uint64_t size, const char *key, size_t len) {
    if (size < SGB_LIST_HEADER) return -1;
    uint64_t nslots = rd64(base + 40);
    uint32_t seed = rd32(base + 56);
    if (nslots == 0 || (nslots & (nslots - 1)) != 0) return -1;
    if (nslots > (size - SGB_LIST_HEADER) / 16) return -1;
    uint64_t h[2];
    sgb_murmur3_128(key, len, seed, h);
    uint64_t mask = nslots - 1;
    for (uint64_t n = 0, i = h[0] & mask; n < nslots; n++, i = (i + 1) & mask) {
        const uint8_t *slot = base + SGB_LIST_HEADER + i * 16;
        uint64_t off = rd64(slot + 8);
        if (off == 0) return -1;
        if (rd64(slot) != h[0]) continue;
        if (off > size - 8) return -1;
        uint32_t keylen = rd32(base + off);
        if (keylen == len && len <= size - off - 8 && memcmp(base + off + 8, key, len) == 0)
            return (int64_t)off;
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
    uint64_t off = (uint64_t)rec;
    uint32_t count = rd32(base + off + 4);
    off += 8 + hostlen;
    for (uint32_t n = 0; n < count; n++) {
        if (off > size - 8) return -1;
        uint32_t keylen = rd32(base + off), redirlen = rd32(base + off + 4);
        if ((uint64_t)keylen + redirlen > size - off - 8) return -1;
        if (keylen <= len && memcmp(base + off + 8, s, keylen) == 0) return (int64_t)off;
        off += 8 + (uint64_t)keylen + redirlen;
    }
    return -1;
}

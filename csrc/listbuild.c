/* Compiling a blacklist in bounded pieces; see listbuild.h. */
#include "listbuild.h"

#include <stdlib.h>
#include <string.h>

#include "murmur3.h"

#define SGB_BLOCK       16 /* slots per entry of the blocks array (listindex.h) */
#define SGB_SUFFIX_SLOT 16 /* bytes per entry of the suffix table */
#define SGB_MAX_RECORD  (1u << 30)

/* One line of a block: where it is and what its key and group are. */
struct line {
    const char *p;     /* the line, without its '\n' */
    uint32_t len;      /* bytes before the '\n' */
    uint32_t keylen;   /* bytes before the '\t', or len */
    uint32_t grouplen; /* the key, or its part before the first '/' (url) */
};

/* The line starting at buf[*off], which moves past its '\n'; 0 at the end. */
static int next_line(const char *buf, uint64_t len, uint64_t *off, int url, struct line *l) {
    if (*off >= len) return 0;
    const char *p = buf + *off;
    const char *nl = memchr(p, '\n', len - *off);
    uint64_t n = nl ? (uint64_t)(nl - p) : len - *off;
    *off += n + (nl != NULL);
    const char *tab = memchr(p, '\t', n);
    uint64_t klen = tab ? (uint64_t)(tab - p) : n;
    const char *slash = url ? memchr(p, '/', klen) : NULL;
    l->p = p;
    l->len = (uint32_t)n;
    l->keylen = (uint32_t)klen;
    l->grouplen = (uint32_t)(slash ? (uint64_t)(slash - p) : klen);
    return 1;
}

static uint64_t group_hash(const struct line *l, uint32_t seed) {
    uint64_t h[2];
    sgb_murmur3_128(l->p, l->grouplen, seed, h);
    return h[0];
}

int sgb_build_plain(const char *buf, uint64_t len, int url) {
    const uint8_t *p = (const uint8_t *)buf;
    uint8_t prev = '\n';
    for (uint64_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c == '\n') {
            if (prev == '.') return 0;
        } else if (c <= ' ' || c >= 0x7f) {
            return 0;
        } else if (prev == '\n' && (c == '#' || c == '+' || c == '-' || c == '.')) {
            return 0;
        } else if (url && (c == ':' || c == '@' || (c == '/' && prev == '.'))) {
            return 0;
        }
        prev = c;
    }
    return prev == '\n';
}

static uint32_t part_of(uint64_t h, uint32_t nparts) {
    return (uint32_t)(((h >> 32) * nparts) >> 32);
}

uint64_t sgb_build_split(const char *buf, uint64_t len, int url, uint32_t seed, uint32_t nparts,
                         char *out, uint64_t *sizes, uint64_t *at) {
    struct line l;
    uint64_t off = 0, total = 0;
    memset(sizes, 0, sizeof *sizes * nparts);
    if (nparts == 1) {
        while (next_line(buf, len, &off, url, &l))
            if (l.len > 0) {
                memcpy(out + total, l.p, l.len);
                out[total + l.len] = '\n';
                total += l.len + 1;
            }
        sizes[0] = total;
        return total;
    }
    /* count, then copy: hashing twice costs less than remembering every part */
    while (next_line(buf, len, &off, url, &l))
        if (l.len > 0) sizes[part_of(group_hash(&l, seed), nparts)] += l.len + 1;
    for (uint32_t p = 0; p < nparts; p++) {
        at[p] = total;
        total += sizes[p];
    }
    off = 0;
    while (next_line(buf, len, &off, url, &l)) {
        if (l.len == 0) continue;
        uint64_t *dst = &at[part_of(group_hash(&l, seed), nparts)];
        memcpy(out + *dst, l.p, l.len);
        out[*dst + l.len] = '\n';
        *dst += l.len + 1;
    }
    return total;
}

struct entry {
    uint64_t h;
    struct line l;
    uint64_t seq; /* position in the input: the last of equal keys wins */
};

static int cmp_bytes(const char *a, uint32_t alen, const char *b, uint32_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0) return c;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_entry(const void *pa, const void *pb) {
    const struct entry *a = pa, *b = pb;
    if (a->h != b->h) return a->h < b->h ? -1 : 1;
    if (a->l.grouplen != b->l.grouplen) return a->l.grouplen < b->l.grouplen ? -1 : 1;
    int c = cmp_bytes(a->l.p, a->l.keylen, b->l.p, b->l.keylen);
    if (c != 0) return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sort n entries in record order: a stable radix sort on the hash (its input is in
 * line order, so equal hashes keep it), then the rare runs of equal hashes by
 * cmp_entry.  tmp holds n entries.  Leaves the result in e. */
static void sort_entries(struct entry *e, struct entry *tmp, uint64_t n) {
    struct entry *from = e, *to = tmp;
    for (unsigned shift = 0; shift < 64; shift += 8) {
        uint64_t count[256] = {0};
        for (uint64_t i = 0; i < n; i++) count[(from[i].h >> shift) & 0xff]++;
        if (count[(from[0].h >> shift) & 0xff] == n) continue; /* one bucket: no move */
        uint64_t at = 0;
        for (unsigned b = 0; b < 256; b++) {
            uint64_t c = count[b];
            count[b] = at;
            at += c;
        }
        for (uint64_t i = 0; i < n; i++) to[count[(from[i].h >> shift) & 0xff]++] = from[i];
        struct entry *t = from;
        from = to;
        to = t;
    }
    if (from != e) memcpy(e, from, sizeof *e * n);
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i + 1;
        while (j < n && e[j].h == e[i].h) j++;
        if (j - i > 1) qsort(e + i, j - i, sizeof *e, cmp_entry);
        i = j;
    }
}

static int same_group(const struct entry *a, const struct entry *b) {
    return a->h == b->h && a->l.grouplen == b->l.grouplen &&
           memcmp(a->l.p, b->l.p, a->l.grouplen) == 0;
}

/* The offset of the last '.' of a group that has a suffix candidate, else -1. */
static int64_t label_dot(const char *g, uint32_t glen) {
    for (uint32_t i = glen; i-- > 1;) {
        if (g[i] != '.') continue;
        uint32_t n = glen - i - 1;
        return (n >= 1 && n < SGB_SUFFIX_SLOT) ? (int64_t)i : -1;
    }
    return -1;
}

static uint32_t label_hash(const char *s, uint32_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (uint32_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* Counts of last labels: a table of up to 3/4 of TALLY_SLOTS labels; the others are
 * written out one by one. */
#define TALLY_SLOTS 1024
struct tally {
    const char *label[TALLY_SLOTS];
    uint64_t count[TALLY_SLOTS];
    uint32_t len[TALLY_SLOTS];
    unsigned used;
};

static uint64_t put_count(char *out, const char *label, uint32_t n, uint64_t count) {
    char digits[24];
    unsigned k = 0;
    do digits[k++] = (char)('0' + count % 10);
    while ((count /= 10) != 0);
    memcpy(out, label, n);
    out[n] = '\t';
    for (unsigned i = 0; i < k; i++) out[n + 1 + i] = digits[k - 1 - i];
    out[n + 1 + k] = '\n';
    return n + 2 + k;
}

static uint64_t tally_add(struct tally *t, const char *label, uint32_t n, char *out) {
    uint32_t j = label_hash(label, n) % TALLY_SLOTS;
    for (; t->label[j] != NULL; j = (j + 1) % TALLY_SLOTS) {
        if (t->len[j] == n && memcmp(t->label[j], label, n) == 0) {
            t->count[j]++;
            return 0;
        }
    }
    if (4 * (t->used + 1) > 3 * TALLY_SLOTS) return put_count(out, label, n, 1);
    t->label[j] = label;
    t->len[j] = n;
    t->count[j] = 1;
    t->used++;
    return 0;
}

int64_t sgb_build_sort(const char *buf, uint64_t len, int url, uint32_t seed, char *out,
                       char *labels, uint64_t *labels_len, uint64_t *groups) {
    uint64_t n = 0, off = 0;
    struct line l;
    while (next_line(buf, len, &off, url, &l)) n += l.len > 0;
    *labels_len = 0;
    *groups = 0;
    if (n == 0) return 0;
    struct entry *e = malloc(sizeof *e * n), *tmp = malloc(sizeof *tmp * n);
    struct tally *t = calloc(1, sizeof *t);
    if (e == NULL || tmp == NULL || t == NULL) {
        free(e);
        free(tmp);
        free(t);
        return -1;
    }
    uint64_t i = 0;
    off = 0;
    while (next_line(buf, len, &off, url, &l)) {
        if (l.len == 0) continue;
        e[i].h = group_hash(&l, seed);
        e[i].l = l;
        e[i].seq = i;
        i++;
    }
    sort_entries(e, tmp, n);
    free(tmp);
    uint64_t o = 0, lo = 0;
    const struct entry *prev = NULL;
    for (i = 0; i < n; i++) {
        if (i + 1 < n && e[i + 1].h == e[i].h && e[i + 1].l.keylen == e[i].l.keylen &&
            memcmp(e[i + 1].l.p, e[i].l.p, e[i].l.keylen) == 0)
            continue; /* a later line has the same key */
        if (prev == NULL || !same_group(prev, &e[i])) {
            ++*groups;
            int64_t dot = label_dot(e[i].l.p, e[i].l.grouplen);
            if (dot >= 0)
                lo += tally_add(t, e[i].l.p + dot + 1, e[i].l.grouplen - (uint32_t)dot - 1,
                                labels + lo);
        }
        memcpy(out + o, e[i].l.p, e[i].l.len);
        out[o + e[i].l.len] = '\n';
        o += e[i].l.len + 1;
        prev = &e[i];
    }
    for (unsigned j = 0; j < TALLY_SLOTS; j++)
        if (t->label[j] != NULL) lo += put_count(labels + lo, t->label[j], t->len[j], t->count[j]);
    free(t);
    free(e);
    *labels_len = lo;
    return (int64_t)o;
}

static unsigned varint_len(uint64_t v) {
    unsigned n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Suffixes by label: open addressing over 512 slots holding index + 1. */
#define SFX_SLOTS 512

static uint32_t label_slot(const char *s, uint32_t n) { return label_hash(s, n) % SFX_SLOTS; }

static void suffix_index(const uint8_t *suffixes, uint32_t nsuffixes, uint16_t *index) {
    memset(index, 0, sizeof *index * SFX_SLOTS);
    for (uint32_t i = 0; i < nsuffixes; i++) {
        const uint8_t *s = suffixes + SGB_SUFFIX_SLOT * i;
        uint32_t j = label_slot((const char *)s + 1, s[0]);
        while (index[j] != 0) j = (j + 1) % SFX_SLOTS;
        index[j] = (uint16_t)(i + 1);
    }
}

/* The suffix index of the group g's last label, or -1. */
static int find_suffix(const uint8_t *suffixes, const uint16_t *index, const char *g, uint32_t glen,
                       uint32_t *stemlen) {
    int64_t dot = label_dot(g, glen);
    if (dot < 0) return -1;
    const char *label = g + dot + 1;
    uint32_t n = glen - (uint32_t)dot - 1;
    for (uint32_t j = label_slot(label, n); index[j] != 0; j = (j + 1) % SFX_SLOTS) {
        const uint8_t *s = suffixes + SGB_SUFFIX_SLOT * (index[j] - 1u);
        if (s[0] == n && memcmp(s + 1, label, n) == 0) {
            *stemlen = (uint32_t)dot;
            return index[j] - 1;
        }
    }
    return -1;
}

/* Bytes of the record of key and a value of vlen bytes (no suffix). */
static uint64_t record_size(uint64_t keylen, uint64_t vlen) {
    uint64_t head = keylen << 2 | (vlen > 0);
    return varint_len(head) + (vlen > 0 ? varint_len(vlen) : 0) + keylen + vlen;
}

static uint8_t *put_head(uint8_t *p, uint64_t keylen, int sfx, uint64_t vlen) {
    p = put_varint(p, keylen << 2 | (uint64_t)(sfx >= 0) << 1 | (vlen > 0));
    if (sfx >= 0) *p++ = (uint8_t)sfx;
    if (vlen > 0) p = put_varint(p, vlen);
    return p;
}

int64_t sgb_build_records(const char *buf, uint64_t len, int url, uint32_t seed,
                          const uint8_t *suffixes, uint32_t nsuffixes, char *out, uint64_t outcap,
                          uint32_t *hi, uint16_t *tags, uint32_t *lens, uint64_t maxrecs,
                          uint64_t *outlen, uint64_t *entries) {
    uint16_t index[SFX_SLOTS];
    suffix_index(suffixes, nsuffixes, index);
    uint8_t *o = (uint8_t *)out, *end = (uint8_t *)out + outcap;
    uint64_t off = 0, nrec = 0, nlines = 0;
    struct line l;
    int have = next_line(buf, len, &off, url, &l);
    while (have) {
        /* the group of l: l and the lines after it with the same group */
        const char *g = l.p;
        uint32_t glen = l.grouplen;
        uint64_t value_bytes, first = (uint64_t)(l.p - buf), last_off;
        if (!url) {
            value_bytes = l.len - l.keylen - (l.len > l.keylen);
            last_off = off;
            have = next_line(buf, len, &off, url, &l);
            nlines++;
        } else {
            value_bytes = 0;
            do {
                uint64_t vlen = l.len - l.keylen - (l.len > l.keylen);
                value_bytes += record_size(l.keylen - glen, vlen);
                nlines++;
                last_off = off;
                have = next_line(buf, len, &off, url, &l);
            } while (have && l.grouplen == glen && memcmp(l.p, g, glen) == 0);
        }
        if (nrec == maxrecs || glen >= SGB_MAX_RECORD || value_bytes >= SGB_MAX_RECORD) return -1;
        uint32_t stemlen = glen;
        int sfx = find_suffix(suffixes, index, g, glen, &stemlen);
        uint64_t size = varint_len((uint64_t)stemlen << 2 | 3) + (sfx >= 0) +
                        (value_bytes > 0 ? varint_len(value_bytes) : 0) + stemlen + value_bytes;
        if (size > (uint64_t)(end - o) || size >= SGB_MAX_RECORD) return -1;
        uint8_t *start = o;
        o = put_head(o, stemlen, sfx, value_bytes);
        memcpy(o, g, stemlen);
        o += stemlen;
        /* the value: a domain's redirect, or a host's entries */
        uint64_t at = first;
        struct line e;
        while (at < last_off && next_line(buf, last_off, &at, url, &e)) {
            uint64_t vlen = e.len - e.keylen - (e.len > e.keylen);
            const char *v = e.p + e.keylen + 1;
            if (url) {
                o = put_head(o, e.keylen - glen, -1, vlen);
                memcpy(o, e.p + glen, e.keylen - glen);
                o += e.keylen - glen;
            }
            if (vlen > 0) memcpy(o, v, vlen);
            o += vlen;
        }
        uint64_t h[2];
        sgb_murmur3_128(g, glen, seed, h);
        hi[nrec] = (uint32_t)(h[0] >> 32);
        tags[nrec] = (uint16_t)h[0] ? (uint16_t)h[0] : 1;
        lens[nrec] = (uint32_t)(o - start);
        nrec++;
    }
    *outlen = (uint64_t)(o - (uint8_t *)out);
    *entries = nlines;
    return (int64_t)nrec;
}

uint64_t sgb_build_place(const uint32_t *hi, uint64_t n, uint32_t nslots, uint64_t pos) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t home = ((uint64_t)hi[i] * nslots) >> 32;
        if (home > pos) pos = home;
        pos++;
    }
    return pos;
}

int sgb_build_fill(const uint32_t *hi, const uint16_t *tags, const uint32_t *lens, uint64_t n,
                   int wrapped, uint32_t nslots, uint16_t *tags_out, uint32_t *blocks_out,
                   uint64_t *state) {
    uint64_t pos = state[0], off = state[1], next_block = state[2];
    for (uint64_t i = 0; i < n; i++) {
        uint64_t slot;
        if (wrapped) {
            slot = state[3]++;
        } else {
            uint64_t home = ((uint64_t)hi[i] * nslots) >> 32;
            if (home > pos) pos = home;
            slot = pos++;
        }
        if (slot >= nslots) return -1;
        for (; next_block <= slot / SGB_BLOCK; next_block++) {
            if (off > UINT32_MAX) return -1;
            blocks_out[next_block] = (uint32_t)off;
        }
        tags_out[slot] = tags[i];
        off += lens[i];
    }
    state[0] = pos;
    state[1] = off;
    state[2] = next_block;
    return 0;
}

/* The Bloom filter; the contract and the file format are in bloom.h. */
#define _GNU_SOURCE
#include "bloom.h"
#include "murmur3.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "squidguard-bloom's filter file format is little-endian; this host is not"
#endif

static const char MAGIC[8] = {'S', 'G', 'B', 'L', 'O', 'O', 'M', 0x1a};

/* The on-disk header, 128 bytes; see bloom.h for the field table. */
struct file_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint64_t capacity;
    double error;
    uint64_t bits;
    uint32_t hashes;
    uint32_t seed;
    uint64_t data_bytes;
    uint64_t checksum;
    uint64_t entries;
    uint32_t add_lock; /* PID of the process adding a new key, or 0: see add_at() */
    uint8_t reserved[SGB_HEADER_SIZE - 76];
};
_Static_assert(sizeof(struct file_header) == SGB_HEADER_SIZE, "header layout");
_Static_assert(offsetof(struct file_header, checksum) == 56, "header layout");

struct sgb_bloom {
    uint64_t capacity;
    double error;
    uint64_t bits;
    uint32_t hashes;
    uint32_t seed;
    uint64_t data_bytes;
    uint8_t *data;     /* the bit array (inside map when shared) */
    uint64_t *entries; /* &local_entries or the mapped header's counter */
    uint64_t local_entries;
    uint32_t *add_lock; /* &local_lock or the mapped header's lock word */
    uint32_t local_lock;
    void *map; /* whole file mapping, or NULL */
    size_t map_len;
};

const char *sgb_strerror(int code) {
    switch (code) {
    case SGB_OK: return "success";
    case SGB_EPARAM: return "capacity must be at least 1 and error rate strictly between 0 and 1";
    case SGB_ETOOBIG: return "filter too large: its size cannot be represented on this machine";
    case SGB_ENOMEM: return "out of memory";
    case SGB_EOS: return "system call failed";
    case SGB_EMAGIC: return "not a squidguard-bloom filter file (bad magic)";
    case SGB_EVERSION: return "filter file has an unsupported format version";
    case SGB_ECORRUPT: return "filter file header is corrupted (checksum or fields inconsistent)";
    case SGB_ETRUNCATED:
        return "filter file length does not match its header (truncated or padded)";
    case SGB_EMISMATCH: return "filter file was made with another capacity, error rate or seed";
    case SGB_EEXIST: return "filter file already exists";
    default: return "unknown error";
    }
}

static double fpr(double k, double n, double m) { return pow(1.0 - exp(-k * n / m), k); }

int sgb_bloom_size(uint64_t capacity, double error, uint64_t *bits, uint32_t *hashes) {
    if (capacity < 1 || !(error > 0.0 && error < 1.0)) return SGB_EPARAM;
    const double ln2 = log(2.0);
    const double n = (double)capacity;
    const double mf = ceil(-n * log(error) / (ln2 * ln2));
    /* m <= 2^63 keeps a' + b' below 2^64 in the probe loop. */
    if (!(mf >= 1.0) || mf > 9223372036854775808.0) return SGB_ETOOBIG;
    const uint64_t m = (uint64_t)mf;
    if ((m + 63) / 64 > (SIZE_MAX - SGB_HEADER_SIZE) / 8) return SGB_ETOOBIG;

    const double kstar = (double)m / n * ln2;
    double lo = floor(kstar), hi = lo + 1.0;
    if (lo < 1.0) lo = 1.0;
    double k = fpr(hi, n, (double)m) < fpr(lo, n, (double)m) ? hi : lo;
    if (k > SGB_MAX_HASHES) return SGB_EPARAM;
    *bits = m;
    *hashes = (uint32_t)k;
    return SGB_OK;
}

static uint64_t header_checksum(const struct file_header *h) {
    uint64_t out[2];
    sgb_murmur3_128(h, offsetof(struct file_header, checksum), 0x53474248u, out);
    return out[0];
}

/* A filter struct with sizes filled in and no storage yet. */
static int bloom_alloc(uint64_t capacity, double error, uint32_t seed, sgb_bloom **out) {
    uint64_t m;
    uint32_t k;
    int rc = sgb_bloom_size(capacity, error, &m, &k);
    if (rc != SGB_OK) return rc;
    sgb_bloom *b = calloc(1, sizeof *b);
    if (!b) return SGB_ENOMEM;
    b->capacity = capacity;
    b->error = error;
    b->bits = m;
    b->hashes = k;
    b->seed = seed;
    b->data_bytes = (m + 63) / 64 * 8;
    b->entries = &b->local_entries;
    b->add_lock = &b->local_lock;
    *out = b;
    return SGB_OK;
}

int sgb_bloom_new(uint64_t capacity, double error, uint32_t seed, sgb_bloom **out) {
    sgb_bloom *b;
    int rc = bloom_alloc(capacity, error, seed, &b);
    if (rc != SGB_OK) return rc;
    b->data = calloc(1, (size_t)b->data_bytes);
    if (!b->data) {
        free(b);
        return SGB_ENOMEM;
    }
    *out = b;
    return SGB_OK;
}

static void fill_header(const sgb_bloom *b, struct file_header *h) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, MAGIC, sizeof MAGIC);
    h->version = SGB_FORMAT_VERSION;
    h->header_size = SGB_HEADER_SIZE;
    h->capacity = b->capacity;
    h->error = b->error;
    h->bits = b->bits;
    h->hashes = b->hashes;
    h->seed = b->seed;
    h->data_bytes = b->data_bytes;
    h->checksum = header_checksum(h);
    h->entries = __atomic_load_n(b->entries, __ATOMIC_RELAXED);
}

/*
 * Check a header read from a file of file_size bytes: magic, version,
 * checksum, the sizes it implies, and that they are what sgb_bloom_size
 * computes for its (n, p) -- a file is never trusted to describe itself.
 */
static int validate_header(const struct file_header *h, uint64_t file_size) {
    if (file_size < 8 || memcmp(h->magic, MAGIC, sizeof MAGIC) != 0)
        return file_size < 8 ? SGB_ETRUNCATED : SGB_EMAGIC;
    if (file_size < SGB_HEADER_SIZE) return SGB_ETRUNCATED;
    if (h->version != SGB_FORMAT_VERSION) return SGB_EVERSION;
    if (h->header_size != SGB_HEADER_SIZE || h->checksum != header_checksum(h)) return SGB_ECORRUPT;
    uint64_t m;
    uint32_t k;
    if (sgb_bloom_size(h->capacity, h->error, &m, &k) != SGB_OK || m != h->bits || k != h->hashes ||
        h->data_bytes != (m + 63) / 64 * 8)
        return SGB_ECORRUPT;
    if (file_size != SGB_HEADER_SIZE + h->data_bytes) return SGB_ETRUNCATED;
    return SGB_OK;
}

static int write_all(int fd, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return SGB_EOS;
        }
        p += w;
        len -= (size_t)w;
    }
    return SGB_OK;
}

static int read_all(int fd, void *buf, size_t len) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = read(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (r < 0) {
            if (errno == EINTR) continue;
            return SGB_EOS;
        }
        if (r == 0) return SGB_ETRUNCATED;
        p += r;
        len -= (size_t)r;
    }
    return SGB_OK;
}

/* fsync the directory holding path, so a rename or link in it is durable. */
static int sync_parent(const char *path) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) {
            errno = ENAMETOOLONG;
            return SGB_EOS;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return SGB_EOS;
    int rc = fsync(fd) == 0 ? SGB_OK : SGB_EOS;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/*
 * Write header + bit array to a new temporary file beside path; on success
 * *tmp_out holds its name (caller frees, and renames or links it).
 */
static int write_temp(const sgb_bloom *b, const char *path, const uint8_t *data, char **tmp_out) {
    size_t len = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(len);
    if (!tmp) return SGB_ENOMEM;
    snprintf(tmp, len, "%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        free(tmp);
        return SGB_EOS;
    }
    struct file_header h;
    fill_header(b, &h);
    int rc = write_all(fd, &h, sizeof h);
    if (rc == SGB_OK) {
        if (data) {
            rc = write_all(fd, data, (size_t)b->data_bytes);
        } else if (ftruncate(fd, (off_t)(SGB_HEADER_SIZE + b->data_bytes)) != 0) {
            rc = SGB_EOS; /* a new, empty filter: a sparse run of zeros */
        }
    }
    if (rc == SGB_OK && fchmod(fd, 0644) != 0) rc = SGB_EOS;
    if (rc == SGB_OK && fsync(fd) != 0) rc = SGB_EOS;
    int saved = errno;
    if (close(fd) != 0 && rc == SGB_OK) {
        rc = SGB_EOS;
        saved = errno;
    }
    if (rc != SGB_OK) {
        unlink(tmp);
        free(tmp);
        errno = saved;
        return rc;
    }
    *tmp_out = tmp;
    return SGB_OK;
}

int sgb_bloom_save(const sgb_bloom *b, const char *path) {
    char *tmp;
    int rc = write_temp(b, path, b->data, &tmp);
    if (rc != SGB_OK) return rc;
    if (rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        free(tmp);
        errno = saved;
        return SGB_EOS;
    }
    free(tmp);
    return sync_parent(path);
}

/* Create path holding an empty filter, atomically; SGB_EEXIST if it exists. */
static int create_file(uint64_t capacity, double error, uint32_t seed, const char *path) {
    sgb_bloom *b;
    int rc = bloom_alloc(capacity, error, seed, &b);
    if (rc != SGB_OK) return rc;
    char *tmp;
    rc = write_temp(b, path, NULL, &tmp);
    free(b);
    if (rc != SGB_OK) return rc;
    /* link() fails with EEXIST if another process won the race: use theirs. */
    if (link(tmp, path) != 0) rc = errno == EEXIST ? SGB_EEXIST : SGB_EOS;
    int saved = errno;
    unlink(tmp);
    free(tmp);
    errno = saved;
    if (rc == SGB_OK) rc = sync_parent(path);
    return rc;
}

static int map_file(int fd, uint64_t capacity, double error, uint32_t seed, sgb_bloom **out) {
    struct stat st;
    if (fstat(fd, &st) != 0) return SGB_EOS;
    struct file_header h;
    memset(&h, 0, sizeof h);
    uint64_t size = (uint64_t)st.st_size;
    size_t want = size < sizeof h ? (size_t)size : sizeof h;
    int rc = read_all(fd, &h, want);
    if (rc != SGB_OK) return rc;
    rc = validate_header(&h, size);
    if (rc != SGB_OK) return rc;
    if (capacity != 0 && (h.capacity != capacity || h.error != error || h.seed != seed))
        return SGB_EMISMATCH;
    if (size > SIZE_MAX) return SGB_ETOOBIG;
    void *map = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return SGB_EOS;
    sgb_bloom *b;
    rc = bloom_alloc(h.capacity, h.error, h.seed, &b);
    if (rc != SGB_OK) {
        munmap(map, (size_t)size);
        return rc;
    }
    b->map = map;
    b->map_len = (size_t)size;
    b->data = (uint8_t *)map + SGB_HEADER_SIZE;
    b->entries = &((struct file_header *)map)->entries;
    b->add_lock = &((struct file_header *)map)->add_lock;
    *out = b;
    return SGB_OK;
}

int sgb_bloom_open(const char *path, uint64_t capacity, double error, uint32_t seed, int create,
                   sgb_bloom **out) {
    if (capacity != 0) {
        uint64_t m;
        uint32_t k;
        int rc = sgb_bloom_size(capacity, error, &m, &k);
        if (rc != SGB_OK) return rc;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            int rc = map_file(fd, capacity, error, seed, out);
            int saved = errno;
            close(fd); /* the mapping keeps the file alive */
            errno = saved;
            return rc;
        }
        if (errno != ENOENT || !create || capacity == 0) return SGB_EOS;
        int rc = create_file(capacity, error, seed, path);
        if (rc != SGB_OK && rc != SGB_EEXIST) return rc;
    }
    errno = ENOENT; /* created, then removed by someone before we opened it */
    return SGB_EOS;
}

int sgb_bloom_load(const char *path, sgb_bloom **out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SGB_EOS;
    int rc;
    struct stat st;
    struct file_header h;
    memset(&h, 0, sizeof h);
    sgb_bloom *b = NULL;
    if (fstat(fd, &st) != 0) {
        rc = SGB_EOS;
        goto done;
    }
    uint64_t size = (uint64_t)st.st_size;
    rc = read_all(fd, &h, size < sizeof h ? (size_t)size : sizeof h);
    if (rc == SGB_OK) rc = validate_header(&h, size);
    if (rc == SGB_OK) rc = sgb_bloom_new(h.capacity, h.error, h.seed, &b);
    if (rc == SGB_OK) rc = read_all(fd, b->data, (size_t)b->data_bytes);
    if (rc == SGB_OK) {
        b->local_entries = h.entries;
        *out = b;
        b = NULL;
    }
done:;
    int saved = errno;
    sgb_bloom_free(b);
    close(fd);
    errno = saved;
    return rc;
}

/* First probe and step of key's double-hashing sequence. */
static inline void probes(const sgb_bloom *b, const void *key, size_t len, uint64_t *x,
                          uint64_t *step) {
    uint64_t h[2];
    sgb_murmur3_128(key, len, b->seed, h);
    *x = h[0] % b->bits;
    *step = b->bits > 1 ? 1 + h[1] % (b->bits - 1) : 0;
}

static inline uint64_t next_probe(uint64_t x, uint64_t step, uint64_t m) {
    x += step; /* x, step < m <= 2^63: no overflow */
    return x >= m ? x - m : x;
}

/* Whether every probe of the sequence starting at x is set. */
static inline int check_at(const sgb_bloom *b, uint64_t x, uint64_t step) {
    for (uint32_t i = 0; i < b->hashes; i++) {
        uint8_t byte = __atomic_load_n(&b->data[x >> 3], __ATOMIC_RELAXED);
        if (!(byte & (1u << (x & 7)))) return 0;
        x = next_probe(x, step, b->bits);
    }
    return 1;
}

/*
 * The add lock makes "was this key new?" one step for every process that
 * shares the filter: two children adding the same new key at once (a
 * client's first requests on parallel connections) would otherwise each
 * set some of its bits and each call it new.  Only adds that find a clear
 * bit take it, so known keys (nearly every request) never do.  The word
 * holds the holder's PID.  A waiter takes the lock over when its holder has
 * died (kill -9: kill(pid, 0) fails) or has held it for LOCK_PATIENCE_NS,
 * far longer than the few bit ORs it guards take (a word left by a crash
 * before a reboot may name a live process): so no add ever waits long,
 * and a takeover can at worst let one key be called new twice, never lose
 * a bit (bits are set with atomic OR either way).
 */
#define LOCK_PATIENCE_NS 200000000LL /* 200 ms */

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void lock_add(sgb_bloom *b) {
    uint32_t me = (uint32_t)getpid();
    long long since = 0;
    for (unsigned spins = 0;; spins++) {
        uint32_t seen = 0;
        if (__atomic_compare_exchange_n(b->add_lock, &seen, me, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
        if (spins < 64) continue;
        if (since == 0) since = now_ns();
        int dead = seen != me && kill((pid_t)seen, 0) != 0 && errno == ESRCH;
        if ((dead || now_ns() - since > LOCK_PATIENCE_NS) &&
            __atomic_compare_exchange_n(b->add_lock, &seen, me, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
        sched_yield();
    }
}

static void unlock_add(sgb_bloom *b) { __atomic_store_n(b->add_lock, 0, __ATOMIC_RELEASE); }

/* Set every probe of the sequence starting at x; 1 if one of them was clear. */
static inline int add_at(sgb_bloom *b, uint64_t x, uint64_t step) {
    if (check_at(b, x, step))
        return 0; /* all set: not new, and nothing to write (no lock, no dirty page) */
    lock_add(b);
    int fresh = 0;
    for (uint32_t i = 0; i < b->hashes; i++) {
        uint8_t *byte = &b->data[x >> 3];
        uint8_t mask = (uint8_t)(1u << (x & 7));
        /* Atomic OR all the same: a process of an older version may add unlocked. */
        if (!(__atomic_load_n(byte, __ATOMIC_RELAXED) & mask) &&
            !(__atomic_fetch_or(byte, mask, __ATOMIC_RELAXED) & mask))
            fresh = 1;
        x = next_probe(x, step, b->bits);
    }
    if (fresh) __atomic_fetch_add(b->entries, 1, __ATOMIC_RELAXED);
    unlock_add(b);
    return fresh;
}

int sgb_bloom_check(const sgb_bloom *b, const void *key, size_t len) {
    uint64_t x, step;
    probes(b, key, len, &x, &step);
    return check_at(b, x, step);
}

int sgb_bloom_add(sgb_bloom *b, const void *key, size_t len) {
    uint64_t x, step;
    probes(b, key, len, &x, &step);
    return add_at(b, x, step);
}

int sgb_bloom_positions(const sgb_bloom *b, const void *key, size_t len, uint32_t shards,
                        uint64_t *out) {
    if (shards == 0 || (shards > 1 && shards > b->bits / 2)) return SGB_EPARAM;
    uint64_t h[2];
    sgb_murmur3_128(key, len, b->seed, h);
    uint64_t s = shards == 1 ? b->bits : (b->bits + shards - 1) / shards;
    uint64_t x = h[0] % s;
    uint64_t step = s > 1 ? 1 + h[1] % (s - 1) : 0;
    out[0] = shards == 1 ? 0 : (h[0] / s) % shards;
    for (uint32_t i = 0; i < b->hashes; i++) {
        out[1 + i] = x;
        x = next_probe(x, step, s);
    }
    return (int)b->hashes;
}

int sgb_bloom_positions_many(const sgb_bloom *b, const uint8_t *buf, const uint32_t *lengths,
                             size_t count, uint32_t shards, uint64_t *out) {
    if (shards == 0 || (shards > 1 && shards > b->bits / 2)) return SGB_EPARAM;
    for (size_t i = 0; i < count; i++) {
        sgb_bloom_positions(b, buf, lengths[i], shards, out);
        buf += lengths[i];
        out += 1 + b->hashes;
    }
    return (int)b->hashes;
}

/* Where the keys of a batch are: back to back with lengths[], or split by sep. */
struct key_cursor {
    const uint8_t *p, *end;
    const uint32_t *lengths; /* NULL: keys end at sep (the last one at end) */
    uint8_t sep;
};

static inline size_t next_key(struct key_cursor *c, const uint8_t **key) {
    size_t len;
    *key = c->p;
    if (c->lengths) {
        len = *c->lengths++;
        c->p += len;
        return len;
    }
    const uint8_t *stop = c->p < c->end ? memchr(c->p, c->sep, (size_t)(c->end - c->p)) : NULL;
    len = (size_t)((stop ? stop : c->end) - c->p);
    c->p = stop ? stop + 1 : c->end;
    return len;
}

/*
 * Keys are hashed a group at a time and every bit they probe is prefetched
 * before the first one is read, so the cache misses of a group overlap
 * instead of following one another.  Adds still happen in key order, so a
 * key repeated within a batch is new only the first time.
 */
#define BATCH_GROUP 16

static uint64_t batch(sgb_bloom *b, struct key_cursor *c, size_t count, uint8_t *results, int add) {
    uint64_t xs[BATCH_GROUP], steps[BATCH_GROUP], ones = 0;
    for (size_t i = 0; i < count; i += BATCH_GROUP) {
        size_t g = count - i < BATCH_GROUP ? count - i : BATCH_GROUP;
        for (size_t j = 0; j < g; j++) {
            const uint8_t *key;
            size_t len = next_key(c, &key);
            probes(b, key, len, &xs[j], &steps[j]);
            uint64_t x = xs[j];
            for (uint32_t h = 0; h < b->hashes; h++) {
                __builtin_prefetch(&b->data[x >> 3]);
                x = next_probe(x, steps[j], b->bits);
            }
        }
        for (size_t j = 0; j < g; j++) {
            int r = add ? add_at(b, xs[j], steps[j]) : check_at(b, xs[j], steps[j]);
            results[i + j] = (uint8_t)r;
            ones += (uint64_t)r;
        }
    }
    return ones;
}

uint64_t sgb_bloom_check_many(const sgb_bloom *b, const uint8_t *buf, const uint32_t *lengths,
                              size_t count, uint8_t *results) {
    struct key_cursor c = {buf, NULL, lengths, 0};
    return batch((sgb_bloom *)b, &c, count, results, 0);
}

uint64_t sgb_bloom_add_many(sgb_bloom *b, const uint8_t *buf, const uint32_t *lengths, size_t count,
                            uint8_t *results) {
    struct key_cursor c = {buf, NULL, lengths, 0};
    return batch(b, &c, count, results, 1);
}

uint64_t sgb_bloom_check_split(const sgb_bloom *b, const uint8_t *buf, size_t len, uint8_t sep,
                               size_t count, uint8_t *results) {
    struct key_cursor c = {buf, buf + len, NULL, sep};
    return batch((sgb_bloom *)b, &c, count, results, 0);
}

uint64_t sgb_bloom_add_split(sgb_bloom *b, const uint8_t *buf, size_t len, uint8_t sep,
                             size_t count, uint8_t *results) {
    struct key_cursor c = {buf, buf + len, NULL, sep};
    return batch(b, &c, count, results, 1);
}

void sgb_bloom_reset(sgb_bloom *b) {
    memset(b->data, 0, (size_t)b->data_bytes);
    __atomic_store_n(b->entries, 0, __ATOMIC_RELAXED);
}

void sgb_bloom_info(const sgb_bloom *b, struct sgb_bloom_info *info) {
    uint64_t set = 0;
    const uint8_t *p = b->data;
    for (uint64_t i = 0; i < b->data_bytes; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        set += (uint64_t)__builtin_popcountll(w);
    }
    info->capacity = b->capacity;
    info->error = b->error;
    info->bits = b->bits;
    info->hashes = b->hashes;
    info->seed = b->seed;
    info->bytes = b->data_bytes;
    info->entries = __atomic_load_n(b->entries, __ATOMIC_RELAXED);
    info->bits_set = set;
    info->shared = b->map != NULL;
}

void sgb_bloom_free(sgb_bloom *b) {
    if (!b) return;
    if (b->map)
        munmap(b->map, b->map_len);
    else
        free(b->data);
    free(b);
}

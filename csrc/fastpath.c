/* The helper's C fast path: the batch loop (helper/loop.py's Loop.batch);
 * contract in fastpath.h, the parts it calls in fp_internal.h. */
#include <string.h>

#include "fp_internal.h"

/* One batch in progress: where replies, log lines and fallbacks go. */
struct batch {
    const struct sgb_fp_program *prog;
    const uint8_t *in;
    uint8_t *out;
    size_t o, outcap; /* bytes written to out, its room */
    uint8_t *logs;
    size_t lo, logcap; /* bytes written to logs, its room */
    struct sgb_fp_fallback *rest;
    uint64_t nr;       /* fallbacks so far */
    uint64_t *scratch; /* the fallback keys (welcome only) */
    size_t nscratch;
    int poisoned; /* a fallback line whose key C cannot know: Python may add anything */
};

/* The batch's set of fallback keys (IPv4 addresses), open addressing. */
static uint64_t *key_slot(uint64_t *set, size_t size, uint32_t key) {
    size_t i = (size_t)((key * 2654435761u) & (size - 1));
    while (set[i] != 0 && set[i] != ((uint64_t)key | 1ull << 32)) i = (i + 1) & (size - 1);
    return &set[i];
}

/* Welcome.welcomes over a line C would pass: ANSWER_PASS (known, or not a GET/HEAD),
 * TO_WELCOME (a first visit, added to the filter now) or TO_PYTHON (Python must tell;
 * with SGB_FP_WELCOME_CACHE every key the filter lacks). */
static enum outcome welcome(struct batch *b, const struct line *L, uint32_t addr,
                            const struct target *t) {
    const struct sgb_fp_program *prog = b->prog;
    if (fp_exempt(prog, t)) return ANSWER_PASS;
    int m = fp_welcome_method(L);
    if (m < 0 || (m == 1 && (prog->flags & SGB_FP_WELCOME_BY_USER) && L->userlen > 0))
        return TO_PYTHON;
    if (m == 0) return ANSWER_PASS;
    uint8_t key[4] = {(uint8_t)(addr >> 24), (uint8_t)(addr >> 16), (uint8_t)(addr >> 8),
                      (uint8_t)addr};
    if (b->poisoned || *key_slot(b->scratch, b->nscratch, addr) != 0)
        return TO_PYTHON; /* Python may add it first: keep line order */
    if (prog->welcome_previous != NULL && sgb_bloom_check(prog->welcome_previous, key, 4))
        return ANSWER_PASS;
    if (prog->flags & SGB_FP_WELCOME_CACHE) /* a shared state's cache: Python asks */
        return sgb_bloom_check(prog->welcome, key, 4) ? ANSWER_PASS : TO_PYTHON;
    return sgb_bloom_add(prog->welcome, key, 4) == 1 ? TO_WELCOME : ANSWER_PASS;
}

/* Write a pass or block reply, and its log line: 0, or -1 when either does not fit
 * or C cannot write it exactly (nothing is kept then). */
static int answer(struct batch *b, size_t li, enum outcome what, const struct line *L,
                  const struct target *t, const struct verdict *v) {
    struct writer w = {b->out, b->o, b->outcap, 0};
    if (what == ANSWER_BLOCK) {
        if (fp_put_block(&w, b->prog, L, t, v)) return -1;
    } else {
        fp_put_pass(&w, L);
        if (w.full) return -1;
    }
    if (v->log != NULL) {
        struct writer lw = {b->logs, b->lo, b->logcap, 0};
        if (fp_put_log(&lw, b->prog, L, t, v, what == ANSWER_BLOCK ? "REDIRECT" : "PASS"))
            return -1;
        struct sgb_fp_fallback *r = &b->rest[b->nr++];
        *r = (struct sgb_fp_fallback){(uint32_t)li,    SGB_FP_LOG,     (uint32_t)w.n,
                                      (uint32_t)b->lo, (uint32_t)lw.n, v->log->path};
        b->lo = lw.n;
    }
    b->o = w.n;
    return 0;
}

/* One request line, p[0..n): answered in C, or listed for Python. */
static void step(struct batch *b, size_t li, const uint8_t *p, size_t n) {
    struct line L = {0};
    struct target t;
    struct verdict v;
    uint32_t addr = 0;
    int haskey = 0;
    enum outcome what = TO_PYTHON;
    if (fp_split_line(p, n, &L) == 0 && fp_parse_v4(L.client, L.clientlen, &addr) == 0) {
        haskey = 1;
        if (fp_parse_url(L.url, L.urllen, &t) == 0) what = fp_decide(b->prog, &L, addr, &t, &v);
    }
    if (what == ANSWER_PASS && b->prog->welcome != NULL) what = welcome(b, &L, addr, &t);
    if ((what == ANSWER_PASS || what == ANSWER_BLOCK) && answer(b, li, what, &L, &t, &v) == 0)
        return;
    if (what != TO_WELCOME) what = TO_PYTHON; /* a reply or log line that did not fit too */
    if (what == TO_PYTHON && b->prog->welcome != NULL) {
        if (!haskey)
            b->poisoned = 1;
        else
            *key_slot(b->scratch, b->nscratch, addr) = (uint64_t)addr | 1ull << 32;
    }
    b->rest[b->nr++] = (struct sgb_fp_fallback){(uint32_t)li,
                                                what == TO_WELCOME ? SGB_FP_WELCOME : SGB_FP_PYTHON,
                                                (uint32_t)b->o,
                                                (uint32_t)(p - b->in),
                                                (uint32_t)(p - b->in + n),
                                                0};
}

int64_t sgb_fp_batch(const struct sgb_fp_program *prog, const char *text, size_t len, size_t nlines,
                     int strip_cr, uint8_t *out, size_t outcap, uint8_t *logs, size_t logcap,
                     struct sgb_fp_fallback *rest, uint64_t *nrest, uint64_t *scratch,
                     size_t nscratch) {
    const uint8_t *in = (const uint8_t *)text;
    if (prog == NULL || out == NULL || rest == NULL || nrest == NULL) return -1;
    if ((in == NULL && len > 0) || len >= (1u << 31)) return -1;
    *nrest = 0;
    if (nlines == 0) return len == 0 ? 0 : -1;
    size_t count = 1;
    for (const uint8_t *q = in; len > 0 && (q = memchr(q, '\n', (size_t)(in + len - q))); q++)
        count++;
    if (count != nlines) return -1;
    if (prog->welcome != NULL) {
        if (scratch == NULL || nscratch < 2 * nlines || (nscratch & (nscratch - 1)) != 0) return -1;
        memset(scratch, 0, nscratch * sizeof *scratch);
    }
    /* offsets in rest are 32-bit */
    struct batch b = {prog,
                      in,
                      out,
                      0,
                      outcap > UINT32_MAX ? UINT32_MAX : outcap,
                      logs,
                      0,
                      logs == NULL ? 0 : (logcap > UINT32_MAX ? UINT32_MAX : logcap),
                      rest,
                      0,
                      scratch,
                      nscratch,
                      0};
    const uint8_t *p = in, *end = in + len;
    for (size_t li = 0; li < nlines; li++) {
        const uint8_t *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        step(&b, li, p, n > 0 && strip_cr && p[n - 1] == '\r' ? n - 1 : n);
        p = nl ? nl + 1 : end;
    }
    *nrest = b.nr;
    return (int64_t)b.o;
}

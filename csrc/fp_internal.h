/*
 * The fast path's parts (fastpath.h is its public contract): one translation
 * unit each for what it mirrors on the Python side.
 *
 *   fp_parse.c    squidguard_bloom/helper/protocol.py (the request line) and
 *                 squidguard_bloom/core/urlnorm.py (the URL's lookup strings)
 *   fp_decide.c   squidguard_bloom/core/engine/engine.py (sources, acls, pass
 *                 lists over the compiled lists) and helper/welcome.py (which
 *                 requests may be welcomed)
 *   fp_write.c    core/engine/template.py with helper/protocol.py's replies,
 *                 and core/logline.py (the request log line)
 *   fastpath.c    sgb_fp_batch: the batch loop, a line at a time (helper/loop.py)
 *
 * Not part of the cdef: only these files include it.
 */
#ifndef SGB_FP_INTERNAL_H
#define SGB_FP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fastpath.h"

#define MAX_TOKENS 16

/* What C needs of one request line; pointers into the caller's buffer. */
struct line {
    const uint8_t *chan; /* channel-ID, or NULL */
    size_t chanlen;
    const uint8_t *url;
    size_t urllen;
    const uint8_t *client;
    size_t clientlen;
    const uint8_t *fqdn;
    size_t fqdnlen; /* 0: none, or written as "-..." */
    const uint8_t *user;
    size_t userlen; /* 0: written as "-" */
    const uint8_t *method;
    size_t methodlen;
};

/* The lookup strings of a URL, as urlnorm.parse_target makes them. */
struct target {
    uint8_t orig[SGB_FP_MAX_URL]; /* the URL %-decoded once, as written otherwise (%u) */
    size_t origlen;
    char furl[SGB_FP_MAX_URL + 2]; /* host[:port]/path?query, lower-case */
    size_t furllen;
    char surl[SGB_FP_MAX_URL + 2]; /* host without www./web./ftpN. and port, then path */
    size_t surllen;
    char wurl[SGB_FP_MAX_URL + 2]; /* host with its www. but no port, then path */
    size_t wurllen;                /* 0 unless there are both a www. prefix and a port */
    size_t hostlen;                /* the host is furl[0 .. hostlen) */
    int same;                      /* surl is furl (no www. prefix, no port) */
    int dotted;                    /* the host is an IPv4 address */
};

enum outcome { ANSWER_PASS, ANSWER_BLOCK, TO_PYTHON, TO_WELCOME };

/* What the pass-list scan found (engine._Verdict). */
struct verdict {
    const struct sgb_fp_branch *branch;
    const struct sgb_fp_dest *dest; /* the dest that decided, or NULL */
    const char *word;               /* the terminator that decided, when no dest did */
    uint32_t name;                  /* span of the acl name (%s) */
    const struct sgb_fp_log *log;   /* where this line is logged, or NULL */
    struct entry_text {             /* the list entry's own redirect, if any */
        const uint8_t *s;
        size_t n;
    } entry;
};

/* Bounded appends to the output buffer; a reply that does not fit is dropped. */
struct writer {
    uint8_t *p;
    size_t n, cap;
    int full;
};

static inline int fp_is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static inline uint8_t fp_lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

/* fp_parse.c */
int fp_split_line(const uint8_t *p, size_t n, struct line *L);
int fp_parse_v4(const uint8_t *s, size_t n, uint32_t *addr);
int fp_parse_url(const uint8_t *raw, size_t rawlen, struct target *t);

/* fp_decide.c */
int fp_span_ok(const struct sgb_fp_program *p, uint32_t i);
enum outcome fp_decide(const struct sgb_fp_program *p, const struct line *L, uint32_t addr,
                       const struct target *t, struct verdict *v);
int fp_welcome_method(const struct line *L);
int fp_exempt(const struct sgb_fp_program *p, const struct target *t);

/* fp_write.c */
int fp_put_block(struct writer *w, const struct sgb_fp_program *p, const struct line *L,
                 const struct target *t, const struct verdict *v);
void fp_put_pass(struct writer *w, const struct line *L);
int fp_put_log(struct writer *w, const struct sgb_fp_program *p, const struct line *L,
               const struct target *t, const struct verdict *v, const char *action);

#endif

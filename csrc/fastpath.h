/*
 * fastpath.h -- the helper's C fast path: a whole batch of request lines in
 * one call, answered here for every line whose answer is certain.
 *
 * squidguard_bloom/native/fastpath.py builds a program (struct sgb_fp_program) from
 * the plan of the loaded configuration (helper/fastplan.py) whenever the config is
 * (re)loaded or the set of active time blocks changes, and hands each batch
 * of request lines to sgb_fp_batch.  For each line the C code either writes
 * the reply (a pass's "ERR" or a block's redirect, with the channel-ID
 * echoed) or records the line as a fallback, to be answered by the Python
 * engine and spliced into the output at the recorded offset.  So order and
 * channel-IDs stay exact whatever the mix.
 *
 * What C decides must be what the Python engine decides, so C only takes
 * lines it can read with certainty and falls back on everything else:
 *
 *   line    [digits SP] URL SP client[/fqdn] SP user SP method [SP k=v]...
 *           with single spaces, no control bytes, the user one token;
 *   client  a strict dotted IPv4 address (no leading zeros);
 *   URL     at most SGB_FP_MAX_URL bytes; once %-decoded as urlnorm decodes
 *           it (%20 kept): ASCII (an internationalised host, full-width
 *           dots included, is put in punycode by Python: core/idn.py; an
 *           ASCII host is canonical once lower-case), no NUL or control
 *           byte, '#' or '\', no '@'
 *           or '%' in the authority, a host that is a name (not one urlnorm
 *           reads as a number, not an '[' IPv6 literal) or a dotted quad as
 *           inet_ntoa writes it, no trailing dot, a port of digits if any,
 *           no "//" or "/." in the path before '?';
 *   policy  the source is found by the client address alone (rules), the
 *           pass list is scanned over compiled domain and url lists and the
 *           expression prefilter; passes are answered with "ERR", blocks
 *           with the redirect template of the dest or the acl expanded as
 *           template.expand does, and their log lines (a block's, a
 *           verbose pass's) handed back for Python to write in line order;
 *           a list entry's own redirect comes first, as in Python; dest
 *           rewrites, rewrites of allowed requests and anything the program
 *           marks for Python fall back.
 *
 * Expressions run only in Python (RE2): for each expression the program
 * holds literal strings of which at least one occurs (lower-cased) in any
 * URL the expression matches; a line whose lower-cased furl contains any of
 * its dests' literals falls back.
 *
 * First visits: with a welcome filter in the program, a pass of a GET or
 * HEAD request to a host that is not exempt adds the client's address key
 * (its 4 packed bytes) to the filter (after checking the previous window
 * generation, when there is one); when the key was new the line falls back
 * as SGB_FP_WELCOME: Python answers it with the welcome redirect and must
 * not add the key again.  A line whose key matches that of an earlier
 * fallback line of the same batch (which Python may still add) falls back
 * too, and so does every later candidate once a fallback line's key is one C
 * cannot compute (another spelling of an address): adds happen in line order.
 * With SGB_FP_WELCOME_CACHE the filter is only a cache of a state shared
 * elsewhere (Redis): a known key passes here, any other candidate falls back
 * as SGB_FP_PYTHON, and Python asks about all of a batch's at once.
 *
 * Nothing here allocates, writes to stdout or stderr, or exits; every read
 * stays inside the given buffers and the mapped lists (checked by listindex).
 */
#ifndef SGB_FASTPATH_H
#define SGB_FASTPATH_H

#include <stddef.h>
#include <stdint.h>

#include "bloom.h"

/* cdef-begin */
#define SGB_FP_MAX_URL 4096

/* rule kinds: how a rule tests the client's IPv4 address */
#define SGB_FP_MASK  0 /* (addr & b) == a */
#define SGB_FP_RANGE 1 /* a <= addr <= b */
#define SGB_FP_ANY   2 /* every address */

/* source flags */
#define SGB_FP_SRC_FQDN       1 /* also needs a client domain: with one -> Python, else no match */
#define SGB_FP_SRC_USER       2 /* also needs a user: with a user -> Python */
#define SGB_FP_SRC_EMPTY_USER 4 /* ... and matches the empty user ("-") */

/* pass-list item kinds (inactive dests and unknown words are left out) */
#define SGB_FP_DEST   0
#define SGB_FP_ALL    1
#define SGB_FP_NONE   2
#define SGB_FP_INADDR 3 /* decides for a host that is an IPv4 address */

/* branch flags */
#define SGB_FP_BR_PYTHON  1 /* every line on this branch goes to Python */
#define SGB_FP_BR_REWRITE 2 /* an allowed line may be rewritten: Python */

/* dest flags */
#define SGB_FP_D_PYTHON  1 /* lists C cannot read: a line that reaches it goes to Python */
#define SGB_FP_D_REWRITE 8 /* has a rewrite: a block without a dest redirect -> Python */

/* program flags */
#define SGB_FP_WELCOME_BY_USER 4 /* the key is the user when known: lines with a user -> Python */
#define SGB_FP_WELCOME_CACHE                                                                       \
    8 /* the filter caches a state shared elsewhere (Redis): a key it                              \
         lacks is not added, its line goes to Python */

/* log spec flags */
#define SGB_FP_LOG_VERBOSE   1 /* passes are logged too */
#define SGB_FP_LOG_ANONYMOUS 2 /* the user is not */

/* fallback kinds */
#define SGB_FP_PYTHON  0 /* Python decides and answers the line */
#define SGB_FP_WELCOME 1 /* a first visit, already added to the filter: Python answers it */
#define SGB_FP_LOG     2 /* answered here; Python writes its log line (start..end in logs) */

/* A ``log [anonymous] [verbose] FILE`` spec; path is the caller's index of FILE. */
struct sgb_fp_log {
    uint32_t flags; /* SGB_FP_LOG_* */
    uint32_t path;
};

struct sgb_fp_rule {
    uint32_t kind;   /* SGB_FP_MASK, SGB_FP_RANGE or SGB_FP_ANY */
    uint32_t a, b;   /* host-order addresses */
    uint32_t source; /* index into sources */
};

struct sgb_fp_source {
    uint32_t flags; /* SGB_FP_SRC_* */
    int32_t branch; /* index into branches, -1: its lines go to Python */
    uint32_t name;  /* span of its acl's name (%s), "default" without an acl */
    int32_t log;    /* its log spec, -1: none */
};

struct sgb_fp_item {
    uint32_t kind;   /* SGB_FP_DEST, SGB_FP_ALL, SGB_FP_NONE or SGB_FP_INADDR */
    uint32_t negate; /* written with '!' */
    uint32_t dest;   /* index into dests (SGB_FP_DEST) */
};

struct sgb_fp_branch {
    uint32_t flags; /* SGB_FP_BR_* */
    uint32_t first; /* its pass list: items[first .. first + count) */
    uint32_t count;
    int32_t redirect; /* template of its blocks (its own, else default's), -1: none */
};

/* A redirect template, its "NNN:" prefix already read (status 0: none,
 * answered as rewrite-url unless the request is a CONNECT). */
struct sgb_fp_template {
    uint32_t status;
    uint32_t span; /* the rest: text with squidGuard's % codes */
};

struct sgb_fp_dest {
    const uint8_t *domains; /* mapped compiled domain list, or NULL */
    uint64_t domains_size;
    const uint8_t *urls; /* mapped compiled url list, or NULL */
    uint64_t urls_size;
    uint32_t flags;         /* SGB_FP_D_* */
    uint32_t first_literal; /* expression prefilter: spans[first .. first + count) */
    uint32_t nliterals;
    uint32_t name;    /* span of its name (%t) */
    int32_t redirect; /* its redirect template, -1: none */
    int32_t log;      /* its log spec, -1: none */
};

struct sgb_fp_program {
    const struct sgb_fp_rule *rules;
    uint32_t nrules;
    const struct sgb_fp_source *sources;
    uint32_t nsources;
    const struct sgb_fp_branch *branches;
    uint32_t nbranches;
    const struct sgb_fp_item *items;
    uint32_t nitems;
    const struct sgb_fp_dest *dests;
    uint32_t ndests;
    const uint8_t *text; /* bytes of literals and exempt hosts */
    uint64_t text_size;
    const uint32_t *spans; /* nspans (offset, length) pairs into text */
    uint32_t nspans;
    const struct sgb_fp_template *templates;
    uint32_t ntemplates;
    const struct sgb_fp_log *logs;
    uint32_t nlogs;
    int32_t default_branch;            /* the branch of clients no source matches */
    uint32_t default_name;             /* span of "default" (%s when no source matched) */
    int32_t default_log;               /* the default acl's log spec, -1: none */
    uint32_t flags;                    /* SGB_FP_WELCOME_BY_USER */
    sgb_bloom *welcome;                /* welcome filter (current generation), or NULL */
    const sgb_bloom *welcome_previous; /* previous generation, or NULL */
    uint32_t first_exempt;             /* hosts never welcomed: spans[first .. first + count) */
    uint32_t nexempt;
};

struct sgb_fp_fallback {
    uint32_t line;  /* index of the line in the batch */
    uint32_t kind;  /* SGB_FP_PYTHON, SGB_FP_WELCOME or SGB_FP_LOG */
    uint32_t at;    /* where its reply goes in out (SGB_FP_LOG: the end of its reply) */
    uint32_t start; /* the line is in[start .. end), its CR dropped with strip_cr; */
    uint32_t end;   /* SGB_FP_LOG: its log line is logs[start .. end) */
    uint32_t path;  /* SGB_FP_LOG: the log spec's path */
};

/*
 * Answer the nlines lines in in[0..len), separated by '\n' (the last one
 * without; with strip_cr, one '\r' ending a line is not part of it).
 * Replies go to out (a line whose reply does not fit in outcap falls back;
 * len + 5 * nlines always holds every pass), the squidGuard log lines
 * ("Request(...) ...": no time stamp, no newline) of the lines answered
 * here to logs (likewise), and rest (room for nlines entries) lists in line
 * order the fallback lines and the log lines; *nrest gets their number.
 * scratch (nscratch entries, a power of two >= 2 * nlines, or NULL/0
 * without a welcome filter) holds the batch's fallback keys.  Returns the
 * number of bytes written to out, or -1 when the arguments are inconsistent
 * or the batch is 2 GiB or more (nothing is then added to the filter).
 */
int64_t sgb_fp_batch(const struct sgb_fp_program *prog, const char *in, size_t len, size_t nlines,
                     int strip_cr, uint8_t *out, size_t outcap, uint8_t *logs, size_t logcap,
                     struct sgb_fp_fallback *rest, uint64_t *nrest, uint64_t *scratch,
                     size_t nscratch);
/* cdef-end */

#endif

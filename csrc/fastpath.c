/* The helper's C fast path; contract in fastpath.h. */
#define _GNU_SOURCE /* memmem */
#include "fastpath.h"

#include <string.h>

#include "listindex.h"

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
    uint8_t orig[SGB_FP_MAX_URL];  /* the URL %-decoded once, as written otherwise (%u) */
    size_t origlen;
    char furl[SGB_FP_MAX_URL + 2]; /* host[:port]/path?query, lower-case */
    size_t furllen;
    char surl[SGB_FP_MAX_URL + 2]; /* host without www./web./ftpN. and port, then path */
    size_t surllen;
    char wurl[SGB_FP_MAX_URL + 2]; /* host with its www. but no port, then path */
    size_t wurllen; /* 0 unless there are both a www. prefix and a port */
    size_t hostlen; /* the host is furl[0 .. hostlen) */
    int same;       /* surl is furl (no www. prefix, no port) */
    int dotted;     /* the host is an IPv4 address */
};

enum outcome { ANSWER_PASS, ANSWER_BLOCK, TO_PYTHON, TO_WELCOME };

/* What the pass-list scan found (policy._Verdict). */
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

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static uint8_t lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

static int is_extra_char(uint8_t c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '-';
}

/* protocol.parse_request's test for a trailing key=value token. */
static int is_extra(const uint8_t *t, size_t n) {
    size_t i = 0;
    while (i < n && is_extra_char(t[i])) i++;
    return i > 0 && i < n && t[i] == '=';
}

static int all_digits(const uint8_t *t, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_digit(t[i])) return 0;
    return n > 0;
}

/* Split a single-space line into its fields; -1 for anything unusual. */
static int split_line(const uint8_t *p, size_t n, struct line *L) {
    const uint8_t *tok[MAX_TOKENS];
    size_t tlen[MAX_TOKENS];
    size_t k = 0, i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && p[i] > 0x20 && p[i] != 0x7f) i++;
        /* an empty token (leading, trailing or double space), or too many */
        if (i == start || k == MAX_TOKENS) return -1;
        tok[k] = p + start;
        tlen[k] = i - start;
        k++;
        if (i == n) break;
        if (p[i] != ' ') return -1; /* a control byte */
        i++;
    }
    size_t first = 0;
    L->chan = NULL;
    L->chanlen = 0;
    if (all_digits(tok[0], tlen[0])) {
        if (k == 1) return -1;
        L->chan = tok[0];
        L->chanlen = tlen[0];
        first = 1;
    }
    size_t end = k;
    while (end > first + 2 && is_extra(tok[end - 1], tlen[end - 1])) end--;
    if (end != first + 4) return -1; /* no method, or a user field of several tokens */
    L->url = tok[first];
    L->urllen = tlen[first];
    const uint8_t *c = tok[first + 1];
    size_t clen = tlen[first + 1];
    const uint8_t *slash = memchr(c, '/', clen);
    L->client = c;
    L->clientlen = slash ? (size_t)(slash - c) : clen;
    L->fqdn = c;
    L->fqdnlen = 0;
    if (slash != NULL) {
        size_t flen = clen - L->clientlen - 1;
        L->fqdn = slash + 1;
        if (flen > 0 && slash[1] != '-') L->fqdnlen = flen;
    }
    L->user = tok[first + 2];
    L->userlen = (tlen[first + 2] == 1 && tok[first + 2][0] == '-') ? 0 : tlen[first + 2];
    L->method = tok[first + 3];
    L->methodlen = tlen[first + 3];
    return 0;
}

/* A strict dotted quad (what both inet_pton and Python's ipaddress accept). */
static int parse_v4(const uint8_t *s, size_t n, uint32_t *addr) {
    uint32_t v = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.') return -1;
            i++;
        }
        size_t st = i;
        uint32_t o = 0;
        while (i < n && is_digit(s[i]) && i - st < 3) o = o * 10 + (uint32_t)(s[i++] - '0');
        if (i == st || o > 255 || (i - st > 1 && s[st] == '0')) return -1;
        v = v << 8 | o;
    }
    if (i != n) return -1;
    *addr = v;
    return 0;
}

static int has_pair(const uint8_t *s, size_t n, uint8_t a, uint8_t b) {
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == a && s[i + 1] == b) return 1;
    return 0;
}

static int parse_v4(const uint8_t *s, size_t n, uint32_t *addr);

/* Whether urlnorm leaves the host as it is: 1 a name, 2 a dotted quad (an
 * address for in-addr), 0 no (_canonical_host rewrites the other hosts made
 * of [0-9a-fx.] that start with a digit; '[' starts an IPv6 literal). */
static int plain_host(const uint8_t *h, size_t n) {
    uint32_t addr;
    if (n == 0 || h[0] == '[' || h[n - 1] == '.') return 0;
    if (!is_digit(h[0])) return 1;
    if (parse_v4(h, n, &addr) == 0) return 2; /* inet_ntoa(inet_aton(h)) == h */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = lower(h[i]);
        if (!(is_digit(c) || (c >= 'a' && c <= 'f') || c == 'x' || c == '.')) return 1;
    }
    return 0;
}

/* urlnorm.parse_target for the URLs it would not change; -1 for the others. */
static int hex_value(uint8_t c) {
    if (is_digit(c)) return c - '0';
    c = lower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

static int parse_url(const uint8_t *raw, size_t rawlen, struct target *t) {
    if (rawlen > SGB_FP_MAX_URL) return -1;
    /* urlnorm._decode_once: %XX decoded once (%20 kept), into orig */
    size_t n = 0;
    for (size_t i = 0; i < rawlen; i++) {
        uint8_t c = raw[i];
        if (c == '%' && i + 2 < rawlen && hex_value(raw[i + 1]) >= 0 &&
            hex_value(raw[i + 2]) >= 0 && !(raw[i + 1] == '2' && raw[i + 2] == '0')) {
            c = (uint8_t)(hex_value(raw[i + 1]) << 4 | hex_value(raw[i + 2]));
            i += 2;
        }
        /* not ASCII (str.lower is not ASCII's, and an IDN host goes to punycode in
         * Python), NUL (ends the URL), control bytes */
        if (c >= 0x80 || c < 0x20 || c == 0x7f || c == '#' || c == '\\') return -1;
        t->orig[n++] = c;
    }
    t->origlen = n;
    const uint8_t *u = t->orig;
    size_t r = 0;
    for (size_t i = 0; i + 2 < n; i++) {
        if (u[i] == ':' && u[i + 1] == '/' && u[i + 2] == '/') {
            r = i + 3;
            break;
        }
    }
    size_t aend = r;
    while (aend < n && u[aend] != '/' && u[aend] != '?') aend++;
    const uint8_t *auth = u + r;
    size_t alen = aend - r;
    if (memchr(auth, '@', alen) != NULL || memchr(auth, '%', alen) != NULL) return -1;
    const uint8_t *colon = memchr(auth, ':', alen);
    size_t hostlen = colon ? (size_t)(colon - auth) : alen;
    if (colon != NULL && !all_digits(colon + 1, alen - hostlen - 1)) return -1;
    int plain = plain_host(auth, hostlen);
    if (plain == 0) return -1;
    const uint8_t *path = u + aend;
    size_t plen = n - aend;
    const uint8_t *q = memchr(path, '?', plen);
    size_t before_query = q ? (size_t)(q - path) : plen;
    if (has_pair(path, before_query, '/', '/') || has_pair(path, before_query, '/', '.'))
        return -1;
    size_t f = 0;
    for (size_t i = 0; i < alen; i++) t->furl[f++] = (char)lower(auth[i]);
    size_t skip = 0;
    if (hostlen > 3 && (memcmp(t->furl, "www", 3) == 0 || memcmp(t->furl, "web", 3) == 0 ||
                        memcmp(t->furl, "ftp", 3) == 0)) {
        size_t i = 3;
        while (i < hostlen && is_digit((uint8_t)t->furl[i])) i++;
        if (i < hostlen && t->furl[i] == '.' && i + 1 < hostlen) skip = i + 1;
    }
    size_t s = hostlen - skip;
    memcpy(t->surl, t->furl + skip, s);
    if (plen > 0 && path[0] == '?') {
        t->furl[f++] = '/';
        t->surl[s++] = '/';
    }
    for (size_t i = 0; i < plen; i++) {
        char c = (char)lower(path[i]);
        t->furl[f++] = c;
        t->surl[s++] = c;
    }
    t->furllen = f;
    t->surllen = s;
    t->wurllen = 0;
    if (skip && colon != NULL) { /* urlnorm's wurl: furl without its ":port" */
        memcpy(t->wurl, t->furl, hostlen);
        memcpy(t->wurl + hostlen, t->furl + alen, f - alen);
        t->wurllen = hostlen + (f - alen);
    }
    t->hostlen = hostlen;
    t->same = skip == 0 && colon == NULL;
    t->dotted = plain == 2;
    return 0;
}

static int span_ok(const struct sgb_fp_program *p, uint32_t i) {
    return i < p->nspans && (uint64_t)p->spans[2 * i] + p->spans[2 * i + 1] <= p->text_size;
}

/* Whether any prefilter literal of d occurs in furl (or d's literals are unreadable). */
static int literal_hit(const struct sgb_fp_program *p, const struct sgb_fp_dest *d,
                       const struct target *t) {
    for (uint32_t j = 0; j < d->nliterals; j++) {
        uint32_t i = d->first_literal + j;
        if (i < d->first_literal || !span_ok(p, i)) return 1;
        uint32_t len = p->spans[2 * i + 1];
        if (len == 0 || memmem(t->furl, t->furllen, p->text + p->spans[2 * i], len) != NULL)
            return 1;
    }
    return 0;
}

static int is_address_host(const struct target *t) {
    return is_digit((uint8_t)t->furl[t->hostlen - 1]); /* lists.lookup._is_address */
}

/* Whether the list record at off carries its own redirect (1, *text set),
 * not (0), or is unreadable (-1). */
static int entry_redirect(const uint8_t *base, uint64_t size, int64_t off,
                          struct entry_text *text) {
    uint64_t key, value;
    uint32_t keylen, valuelen;
    if (sgb_record_parts(base, size, (uint64_t)off, &key, &keylen, &value, &valuelen) < 0)
        return -1;
    text->s = base + value;
    text->n = valuelen;
    return valuelen > 0;
}

/* The dest's verdict on t: 1 listed, 2 listed by an entry with its own
 * redirect (in *text), 0 not listed, -1 Python must look. */
static int dest_lists(const struct sgb_fp_program *p, const struct sgb_fp_dest *d,
                      const struct target *t, struct entry_text *text) {
    if (d->flags & SGB_FP_D_PYTHON) return -1;
    if (d->domains != NULL) {
        int64_t off = is_address_host(t)
                          ? sgb_list_find(d->domains, d->domains_size, t->furl, t->hostlen)
                          : sgb_domain_find(d->domains, d->domains_size, t->furl, t->hostlen);
        if (off >= 0) {
            int r = entry_redirect(d->domains, d->domains_size, off, text);
            return r < 0 ? -1 : 1 + r;
        }
    }
    if (d->urls != NULL) {
        int64_t off = sgb_url_find(d->urls, d->urls_size, t->surl, t->surllen);
        if (off < 0 && !t->same) /* else the same string: the same answer */
            off = sgb_url_find(d->urls, d->urls_size, t->furl, t->furllen);
        if (off < 0 && t->wurllen > 0)
            off = sgb_url_find(d->urls, d->urls_size, t->wurl, t->wurllen);
        if (off >= 0) {
            int r = entry_redirect(d->urls, d->urls_size, off, text);
            return r < 0 ? -1 : 1 + r;
        }
    }
    if (d->nliterals > 0 && literal_hit(p, d, t)) return -1;
    return 0;
}

/* Source and acl branch of the client: branch index, or -1 for Python. */
static int32_t find_branch(const struct sgb_fp_program *p, uint32_t addr, const struct line *L,
                           int32_t *log, uint32_t *name) {
    *log = -1;
    *name = p->default_name;
    for (uint32_t i = 0; i < p->nrules; i++) {
        const struct sgb_fp_rule *r = &p->rules[i];
        int hit = r->kind == SGB_FP_ANY || (r->kind == SGB_FP_MASK && (addr & r->b) == r->a) ||
                  (r->kind == SGB_FP_RANGE && r->a <= addr && addr <= r->b);
        if (!hit) continue;
        if (r->source >= p->nsources) return -1;
        const struct sgb_fp_source *s = &p->sources[r->source];
        if (s->flags & SGB_FP_SRC_FQDN) {
            if (L->fqdnlen > 0) return -1;
            continue; /* no client name: this source cannot match */
        }
        if (s->flags & SGB_FP_SRC_USER) {
            if (L->userlen > 0) return -1;
            if (!(s->flags & SGB_FP_SRC_EMPTY_USER)) continue;
        }
        *log = s->log;
        *name = s->name;
        return s->branch;
    }
    return p->default_branch;
}

/* Decide one parsed line whose client is addr: ANSWER_PASS, ANSWER_BLOCK (v
 * says by what) or TO_PYTHON. */
static enum outcome decide(const struct sgb_fp_program *p, const struct line *L, uint32_t addr,
                           const struct target *t, struct verdict *v) {
    int32_t src_log;
    int32_t b = find_branch(p, addr, L, &src_log, &v->name);
    if (b < 0 || (uint32_t)b >= p->nbranches) return TO_PYTHON;
    const struct sgb_fp_branch *br = v->branch = &p->branches[b];
    if (br->flags & SGB_FP_BR_PYTHON) return TO_PYTHON;
    if ((uint64_t)br->first + br->count > p->nitems) return TO_PYTHON;
    int allow = 1;
    const struct sgb_fp_dest *hit = NULL;
    v->word = "unknown"; /* the end of the pass list */
    v->entry.s = NULL;
    v->entry.n = 0;
    for (uint32_t j = 0; j < br->count; j++) {
        const struct sgb_fp_item *it = &p->items[br->first + j];
        if (it->kind == SGB_FP_ALL) {
            allow = !it->negate;
            v->word = "all";
            break;
        }
        if (it->kind == SGB_FP_NONE) {
            allow = it->negate != 0;
            v->word = "none";
            break;
        }
        if (it->kind == SGB_FP_INADDR) {
            if (!t->dotted) continue;
            allow = !it->negate;
            v->word = "in-addr";
            break;
        }
        if (it->kind != SGB_FP_DEST || it->dest >= p->ndests) return TO_PYTHON;
        const struct sgb_fp_dest *d = &p->dests[it->dest];
        int listed = dest_lists(p, d, t, &v->entry);
        if (listed < 0) return TO_PYTHON;
        if (listed) {
            allow = !it->negate;
            if (listed == 1) v->entry.n = 0;
            hit = d;
            break;
        }
    }
    v->dest = hit;
    /* policy.Engine._log_spec: the default acl's or the dest's, else the source's */
    int32_t li = src_log;
    if (hit == NULL && p->default_log >= 0)
        li = p->default_log;
    else if (hit != NULL && hit->log >= 0)
        li = hit->log;
    if (li >= 0 && (uint32_t)li >= p->nlogs) return TO_PYTHON;
    v->log = li >= 0 ? &p->logs[li] : NULL;
    if (!allow) {
        /* Blocks are answered here when their redirect is known: not the
         * result of a rewrite. */
        if (v->entry.n > 0) return ANSWER_BLOCK;
        if (hit != NULL && hit->redirect < 0 && (hit->flags & SGB_FP_D_REWRITE)) return TO_PYTHON;
        if ((hit == NULL || hit->redirect < 0) && br->redirect < 0) return TO_PYTHON;
        return ANSWER_BLOCK;
    }
    if (br->flags & SGB_FP_BR_REWRITE) return TO_PYTHON;
    if (v->log != NULL && !(v->log->flags & SGB_FP_LOG_VERBOSE)) v->log = NULL;
    return ANSWER_PASS;
}

/* Bounded appends to the output buffer; a reply that does not fit is dropped. */
struct writer {
    uint8_t *p;
    size_t n, cap;
    int full;
};

static void put(struct writer *w, const void *s, size_t n) {
    if (w->full || w->cap - w->n < n) {
        w->full = 1;
        return;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static const char HEX[] = "0123456789ABCDEF";

static void put_pct(struct writer *w, uint8_t c) {
    uint8_t e[3] = {'%', (uint8_t)HEX[c >> 4], (uint8_t)HEX[c & 15]};
    put(w, e, 3);
}

/* template.safe: bytes that could break a reply or a page are %-encoded. */
static void put_safe(struct writer *w, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' ||
            c == '\\' || c == '`')
            put_pct(w, c);
        else
            put(w, &c, 1);
    }
}

/* protocol.quote's escaping of one byte of literal template text. */
static void put_quoted(struct writer *w, uint8_t c) {
    if (c == '"' || c == '\\') {
        uint8_t e[2] = {'\\', c};
        put(w, e, 2);
    } else if (c < 0x20 || c == 0x7f) {
        put_pct(w, c);
    } else {
        put(w, &c, 1);
    }
}

static void put_span(struct writer *w, const struct sgb_fp_program *p, uint32_t i) {
    if (!span_ok(p, i)) {
        w->full = 1;
        return;
    }
    put_safe(w, p->text + p->spans[2 * i], p->spans[2 * i + 1]);
}

/* template.expand's substitution of code c; 0, or -1 when C cannot (non-ASCII user). */
static int put_code(struct writer *w, const struct sgb_fp_program *p, uint8_t c,
                    const struct line *L, const struct target *t, const struct verdict *v) {
    const uint8_t *url = t->orig;
    size_t n = t->origlen;
    switch (c) {
    case 'a':
        put_safe(w, L->client, L->clientlen);
        return 0;
    case 'n':
        put_safe(w, L->fqdn, L->fqdnlen);
        return 0;
    case 'q':
        put(w, "noquota", 7);
        put_safe(w, L->fqdn, L->fqdnlen);
        return 0;
    case 'i':
        for (size_t i = 0; i < L->userlen; i++) {
            uint8_t u = lower(L->user[i]);
            if (u >= 0x80) return -1;
            put_safe(w, &u, 1);
        }
        return 0;
    case 's':
        put_span(w, p, v->name);
        return 0;
    case 't':
        if (v->dest != NULL)
            put_span(w, p, v->dest->name);
        else
            put_safe(w, (const uint8_t *)v->word, strlen(v->word));
        return 0;
    case 'u':
        put_safe(w, url, n < 2048 ? n : 2048);
        return 0;
    case 'p': {
        const uint8_t *start = NULL;
        for (size_t i = 0; i + 1 < n; i++) {
            if (url[i] == '/' && url[i + 1] == '/') {
                start = url + i + 2;
                break;
            }
        }
        if (start == NULL) return 0;
        const uint8_t *slash = memchr(start, '/', (size_t)(url + n - start));
        if (slash != NULL) put_safe(w, slash + 1, (size_t)(url + n - slash - 1));
        return 0;
    }
    case 'f': {
        size_t i = n;
        while (i > 0 && url[i - 1] != '/') i--;
        if (i > 0) put_safe(w, url + i, n - i); /* no '/' at all: nothing, as squidGuard */
        return 0;
    }
    default:
        return 1; /* not a code: stays literal */
    }
}

/* The reply to a block (helper.respond over template.expand); 0, or -1 to fall back. */
/* template.split_status of a list entry's redirect: 0 (none), the status,
 * or -1 when only Python can tell (a non-ASCII byte where \d could match). */
static int entry_status(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < 3 && i < n; i++) {
        if (s[i] >= 0x80) return -1;
        if (!is_digit(s[i])) return 0;
    }
    if (n < 4 || s[3] != ':') return 0;
    int st = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    return (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) ? st : 302;
}

static int put_block(struct writer *w, const struct sgb_fp_program *p, const struct line *L,
                     const struct target *t, const struct verdict *v) {
    const uint8_t *s;
    size_t n;
    uint32_t status;
    if (v->entry.n > 0) { /* the list entry's own redirect comes first */
        int st = entry_status(v->entry.s, v->entry.n);
        if (st < 0) return -1;
        status = (uint32_t)st;
        s = v->entry.s + (st ? 4 : 0);
        n = v->entry.n - (st ? 4 : 0);
    } else {
        int32_t ti = (v->dest != NULL && v->dest->redirect >= 0) ? v->dest->redirect
                                                                  : v->branch->redirect;
        if (ti < 0 || (uint32_t)ti >= p->ntemplates) return -1;
        const struct sgb_fp_template *tp = &p->templates[ti];
        if (!span_ok(p, tp->span)) return -1;
        s = p->text + p->spans[2 * tp->span];
        n = p->spans[2 * tp->span + 1];
        status = tp->status;
    }
    if (L->chan != NULL) {
        put(w, L->chan, L->chanlen);
        put(w, " ", 1);
    }
    int connect = L->methodlen == 7 && memcmp(L->method, "CONNECT", 7) == 0;
    if (status != 0 || connect) {
        char num[16];
        size_t k = 0;
        uint32_t st = status ? status : 302;
        do num[sizeof num - 1 - k++] = (char)('0' + st % 10); while ((st /= 10) && k < 10);
        put(w, "OK status=", 10);
        put(w, num + sizeof num - k, k);
        put(w, " url=\"", 6);
    } else {
        put(w, "OK rewrite-url=\"", 16);
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 1 < n) {
            int r = put_code(w, p, s[i + 1], L, t, v);
            if (r < 0) return -1;
            if (r == 0) {
                i++;
                continue;
            }
            put_quoted(w, s[i]);
            put_quoted(w, s[i + 1]);
            i++;
            continue;
        }
        put_quoted(w, s[i]);
    }
    put(w, "\"\n", 2);
    return w->full ? -1 : 0;
}

static int ieq(const uint8_t *s, size_t n, const char *word) {
    size_t w = strlen(word);
    if (n != w) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != (uint8_t)word[i]) return 0;
    return 1;
}

/* 1: GET or HEAD; 0: neither; -1: cannot tell (non-ASCII). */
static int welcome_method(const struct line *L) {
    for (size_t i = 0; i < L->methodlen; i++)
        if (L->method[i] >= 0x80) return -1;
    return ieq(L->method, L->methodlen, "get") || ieq(L->method, L->methodlen, "head");
}

static int exempt(const struct sgb_fp_program *p, const struct target *t) {
    for (uint32_t j = 0; j < p->nexempt; j++) {
        uint32_t i = p->first_exempt + j;
        if (i < p->first_exempt || !span_ok(p, i)) return 1;
        if (p->spans[2 * i + 1] == t->hostlen &&
            memcmp(p->text + p->spans[2 * i], t->furl, t->hostlen) == 0)
            return 1;
    }
    return 0;
}

static void put_pass(struct writer *w, const struct line *L) {
    if (L->chan != NULL) {
        put(w, L->chan, L->chanlen);
        put(w, " ", 1);
    }
    put(w, "ERR\n", 4);
}

static int ascii(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x80) return 0;
    return 1;
}

static void put_name(struct writer *w, const struct sgb_fp_program *p, uint32_t i) {
    if (!span_ok(p, i)) {
        w->full = 1;
        return;
    }
    put(w, p->text + p->spans[2 * i], p->spans[2 * i + 1]);
}

/* reqlog.request_line of policy.Engine._line: 0, or -1 when C cannot write it
 * exactly (reqlog escapes what is not printable, which for non-ASCII text
 * only Python knows). */
static int put_log(struct writer *w, const struct sgb_fp_program *p, const struct line *L,
                   const struct target *t, const struct verdict *v, const char *action) {
    size_t userlen = (v->log->flags & SGB_FP_LOG_ANONYMOUS) ? 0 : L->userlen;
    if (!ascii(L->fqdn, L->fqdnlen) || !ascii(L->user, userlen) ||
        !ascii(L->method, L->methodlen))
        return -1;
    put(w, "Request(", 8);
    put_name(w, p, v->name);
    put(w, "/", 1);
    if (v->dest != NULL)
        put_name(w, p, v->dest->name);
    else
        put(w, v->word, strlen(v->word));
    put(w, "/-) ", 4);
    put(w, t->orig, t->origlen); /* printable ASCII without spaces: as it is */
    put(w, " ", 1);
    put(w, L->client, L->clientlen);
    put(w, "/", 1);
    if (L->fqdnlen > 0)
        put(w, L->fqdn, L->fqdnlen);
    else
        put(w, "-", 1);
    put(w, " ", 1);
    if (userlen == 0) put(w, "-", 1);
    for (size_t i = 0; i < userlen; i++) {
        uint8_t c = lower(L->user[i]);
        put(w, &c, 1);
    }
    put(w, " ", 1);
    put(w, L->method, L->methodlen);
    put(w, " ", 1);
    put(w, action, strlen(action));
    return w->full ? -1 : 0;
}

/* The batch's set of fallback keys (IPv4 addresses), open addressing. */
static uint64_t *key_slot(uint64_t *set, size_t size, uint32_t key) {
    size_t i = (size_t)((key * 2654435761u) & (size - 1));
    while (set[i] != 0 && set[i] != ((uint64_t)key | 1ull << 32)) i = (i + 1) & (size - 1);
    return &set[i];
}

int64_t sgb_fp_batch(const struct sgb_fp_program *prog, const char *text, size_t len,
                     size_t nlines, int strip_cr, uint8_t *out, size_t outcap,
                     uint8_t *logs, size_t logcap,
                     struct sgb_fp_fallback *rest, uint64_t *nrest,
                     uint64_t *scratch, size_t nscratch) {
    const uint8_t *in = (const uint8_t *)text;
    if (prog == NULL || out == NULL || rest == NULL || nrest == NULL) return -1;
    if ((in == NULL && len > 0) || len >= (1u << 31)) return -1;
    if (logs == NULL) logcap = 0;
    if (outcap > UINT32_MAX) outcap = UINT32_MAX; /* offsets in rest are 32-bit */
    if (logcap > UINT32_MAX) logcap = UINT32_MAX;
    size_t lo = 0; /* bytes written to logs */
    *nrest = 0;
    if (nlines == 0) return len == 0 ? 0 : -1;
    size_t count = 1;
    for (const uint8_t *q = in; len > 0 && (q = memchr(q, '\n', (size_t)(in + len - q))); q++)
        count++;
    if (count != nlines) return -1;
    sgb_bloom *seen = prog->welcome;
    if (seen != NULL) {
        if (scratch == NULL || nscratch < 2 * nlines || (nscratch & (nscratch - 1)) != 0)
            return -1;
        memset(scratch, 0, nscratch * sizeof *scratch);
    }
    int poisoned = 0; /* a fallback line whose key C cannot know: Python may add anything */
    uint64_t nr = 0;
    size_t o = 0;
    const uint8_t *p = in;
    const uint8_t *end = in + len;
    struct target t;
    for (size_t li = 0; li < nlines; li++) {
        const uint8_t *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (strip_cr && n > 0 && p[n - 1] == '\r') n--;
        struct line L = {0};
        uint32_t addr = 0;
        int haskey = 0;
        enum outcome what = TO_PYTHON;
        struct verdict v;
        if (split_line(p, n, &L) == 0 && parse_v4(L.client, L.clientlen, &addr) == 0) {
            haskey = 1;
            if (parse_url(L.url, L.urllen, &t) == 0) what = decide(prog, &L, addr, &t, &v);
        }
        if (what == ANSWER_PASS && seen != NULL && !exempt(prog, &t)) {
            int m = welcome_method(&L);
            if (m < 0 || (m == 1 && (prog->flags & SGB_FP_WELCOME_BY_USER) && L.userlen > 0)) {
                what = TO_PYTHON;
            } else if (m == 1) {
                uint8_t key[4] = {(uint8_t)(addr >> 24), (uint8_t)(addr >> 16),
                                  (uint8_t)(addr >> 8), (uint8_t)addr};
                if (poisoned || *key_slot(scratch, nscratch, addr) != 0)
                    what = TO_PYTHON; /* Python may add it first: keep line order */
                else if (prog->welcome_previous != NULL &&
                         sgb_bloom_check(prog->welcome_previous, key, 4))
                    what = ANSWER_PASS;
                else if (sgb_bloom_add(seen, key, 4) == 1)
                    what = TO_WELCOME;
            }
        }
        if (what == ANSWER_PASS || what == ANSWER_BLOCK) {
            struct writer w = {out, o, outcap, 0};
            int bad;
            if (what == ANSWER_BLOCK) {
                bad = put_block(&w, prog, &L, &t, &v);
            } else {
                put_pass(&w, &L);
                bad = w.full;
            }
            if (!bad && v.log != NULL) {
                struct writer lw = {logs, lo, logcap, 0};
                bad = put_log(&lw, prog, &L, &t, &v, what == ANSWER_BLOCK ? "REDIRECT" : "PASS");
                if (!bad) {
                    rest[nr].line = (uint32_t)li;
                    rest[nr].kind = SGB_FP_LOG;
                    rest[nr].at = (uint32_t)w.n;
                    rest[nr].start = (uint32_t)lo;
                    rest[nr].end = (uint32_t)lw.n;
                    rest[nr].path = v.log->path;
                    nr++;
                    lo = lw.n;
                }
            }
            if (!bad) {
                o = w.n;
                p = nl ? nl + 1 : end;
                continue;
            }
            what = TO_PYTHON; /* a reply or log line that does not fit: Python's */
        }
        if (what == TO_PYTHON && seen != NULL) {
            if (!haskey)
                poisoned = 1;
            else
                *key_slot(scratch, nscratch, addr) = (uint64_t)addr | 1ull << 32;
        }
        rest[nr].line = (uint32_t)li;
        rest[nr].kind = what == TO_WELCOME ? SGB_FP_WELCOME : SGB_FP_PYTHON;
        rest[nr].at = (uint32_t)o;
        rest[nr].start = (uint32_t)(p - in);
        rest[nr].end = (uint32_t)(p - in + n);
        rest[nr].path = 0;
        nr++;
        p = nl ? nl + 1 : end;
    }
    *nrest = nr;
    return (int64_t)o;
}

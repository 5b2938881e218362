/* Writing the replies (core/engine/template.py, helper/protocol.py) and the
 * request log lines (core/logline.py) of the lines C decided. */

#include <string.h>

#include "listindex.h"
#include "fp_internal.h"

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
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' ||
            c == '`')
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
    if (!fp_span_ok(p, i)) {
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
    case 'a': put_safe(w, L->client, L->clientlen); return 0;
    case 'n': put_safe(w, L->fqdn, L->fqdnlen); return 0;
    case 'q':
        put(w, "noquota", 7);
        put_safe(w, L->fqdn, L->fqdnlen);
        return 0;
    case 'i':
        for (size_t i = 0; i < L->userlen; i++) {
            uint8_t u = fp_lower(L->user[i]);
            if (u >= 0x80) return -1;
            put_safe(w, &u, 1);
        }
        return 0;
    case 's': put_span(w, p, v->name); return 0;
    case 't':
        if (v->dest != NULL)
            put_span(w, p, v->dest->name);
        else
            put_safe(w, (const uint8_t *)v->word, strlen(v->word));
        return 0;
    case 'u': put_safe(w, url, n < 2048 ? n : 2048); return 0;
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
    default: return 1; /* not a code: stays literal */
    }
}

/* template.split_status of a list entry's redirect: 0 (none), the status,
 * or -1 when only Python can tell (a non-ASCII byte where \d could match). */
static int entry_status(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < 3 && i < n; i++) {
        if (s[i] >= 0x80) return -1;
        if (!fp_is_digit(s[i])) return 0;
    }
    if (n < 4 || s[3] != ':') return 0;
    int st = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    return (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) ? st : 302;
}

/* Loop.respond's reply to a block: template.expand, then protocol.reply_redirect or
 * reply_rewrite; 0, or -1 to fall back. */
int fp_put_block(struct writer *w, const struct sgb_fp_program *p, const struct line *L,
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
        int32_t ti =
            (v->dest != NULL && v->dest->redirect >= 0) ? v->dest->redirect : v->branch->redirect;
        if (ti < 0 || (uint32_t)ti >= p->ntemplates) return -1;
        const struct sgb_fp_template *tp = &p->templates[ti];
        if (!fp_span_ok(p, tp->span)) return -1;
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
        do num[sizeof num - 1 - k++] = (char)('0' + st % 10);
        while ((st /= 10) && k < 10);
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

/* protocol.reply_pass. */
void fp_put_pass(struct writer *w, const struct line *L) {
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
    if (!fp_span_ok(p, i)) {
        w->full = 1;
        return;
    }
    put(w, p->text + p->spans[2 * i], p->spans[2 * i + 1]);
}

/* logline.request_line as Engine._line calls it: 0, or -1 when C cannot write it
 * exactly (logline escapes what is not printable, which for non-ASCII text only
 * Python knows). */
int fp_put_log(struct writer *w, const struct sgb_fp_program *p, const struct line *L,
               const struct target *t, const struct verdict *v, const char *action) {
    size_t userlen = (v->log->flags & SGB_FP_LOG_ANONYMOUS) ? 0 : L->userlen;
    if (!ascii(L->fqdn, L->fqdnlen) || !ascii(L->user, userlen) || !ascii(L->method, L->methodlen))
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
        uint8_t c = fp_lower(L->user[i]);
        put(w, &c, 1);
    }
    put(w, " ", 1);
    put(w, L->method, L->methodlen);
    put(w, " ", 1);
    put(w, action, strlen(action));
    return w->full ? -1 : 0;
}

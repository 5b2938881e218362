/* Parsing, as squidguard_bloom/helper/protocol.py reads a request line and
 * squidguard_bloom/core/urlnorm.py a URL; -1 for whatever they would read
 * differently from the plain case (Python answers those lines). */

#include <string.h>

#include "fp_internal.h"

static int is_extra_char(uint8_t c) {
    return fp_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
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
        if (!fp_is_digit(t[i])) return 0;
    return n > 0;
}

/* protocol.parse_request for a single-space line: its fields; -1 for anything unusual. */
int fp_split_line(const uint8_t *p, size_t n, struct line *L) {
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

/* keys.address_key / engine._client_address for a strict dotted quad (what both
 * inet_pton and Python's ipaddress accept); -1 for any other client field. */
int fp_parse_v4(const uint8_t *s, size_t n, uint32_t *addr) {
    uint32_t v = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.') return -1;
            i++;
        }
        size_t st = i;
        uint32_t o = 0;
        while (i < n && fp_is_digit(s[i]) && i - st < 3) o = o * 10 + (uint32_t)(s[i++] - '0');
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

/* Whether urlnorm leaves the host as it is: 1 a name, 2 a dotted quad (an
 * address for in-addr), 0 no (_canonical_host rewrites the other hosts made
 * of [0-9a-fx.] that start with a digit; '[' starts an IPv6 literal). */
static int plain_host(const uint8_t *h, size_t n) {
    uint32_t addr;
    if (n == 0 || h[0] == '[' || h[n - 1] == '.') return 0;
    if (!fp_is_digit(h[0])) return 1;
    if (fp_parse_v4(h, n, &addr) == 0) return 2; /* inet_ntoa(inet_aton(h)) == h */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = fp_lower(h[i]);
        if (!(fp_is_digit(c) || (c >= 'a' && c <= 'f') || c == 'x' || c == '.')) return 1;
    }
    return 0;
}

static int hex_value(uint8_t c) {
    if (fp_is_digit(c)) return c - '0';
    c = fp_lower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* urlnorm.parse_target for the URLs it would not change; -1 for the others. */
int fp_parse_url(const uint8_t *raw, size_t rawlen, struct target *t) {
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
    if (has_pair(path, before_query, '/', '/') || has_pair(path, before_query, '/', '.')) return -1;
    size_t f = 0;
    for (size_t i = 0; i < alen; i++) t->furl[f++] = (char)fp_lower(auth[i]);
    size_t skip = 0;
    if (hostlen > 3 && (memcmp(t->furl, "www", 3) == 0 || memcmp(t->furl, "web", 3) == 0 ||
                        memcmp(t->furl, "ftp", 3) == 0)) {
        size_t i = 3;
        while (i < hostlen && fp_is_digit((uint8_t)t->furl[i])) i++;
        if (i < hostlen && t->furl[i] == '.' && i + 1 < hostlen) skip = i + 1;
    }
    size_t s = hostlen - skip;
    memcpy(t->surl, t->furl + skip, s);
    if (plen > 0 && path[0] == '?') {
        t->furl[f++] = '/';
        t->surl[s++] = '/';
    }
    for (size_t i = 0; i < plen; i++) {
        char c = (char)fp_lower(path[i]);
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

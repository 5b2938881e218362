/*
 * accesslog.c -- the monitor's scanner for Squid native access.log lines
 * (see accesslog.h for what it reads and what it hands back).
 */
#include "accesslog.h"

#include <string.h>

#define FIELDS     10
#define MAX_DIGITS 18 /* 10^18 - 1 < 2^63: no overflow */

struct span {
    const uint8_t *p, *e;
};

/* [p, e) as an int64 of 1..MAX_DIGITS decimal digits; 0 if it is not one */
static int digits(const uint8_t *p, const uint8_t *e, int64_t *value) {
    if (p == e || e - p > MAX_DIGITS) return 0;
    int64_t v = 0;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (*p - '0');
    }
    *value = v;
    return 1;
}

/* exact powers of ten as doubles (10^22 is the last one a double holds exactly) */
static const double POW10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
_Static_assert(sizeof POW10 / sizeof POW10[0] > SGB_AL_TS_DIGITS, "POW10 too short");

/*
 * [p, e) as [0-9]+ or [0-9]+.[0-9]+ of at most SGB_AL_TS_DIGITS digits, correctly rounded as
 * Python's float() does; 0 if it is not one.  The digits are an integer m < 10^15 < 2^53 and
 * the value is m / 10^k with both exact doubles, so one IEEE division rounds it correctly
 * (no strtod: it would read the decimal point of the process's locale).
 */
static int timestamp(const uint8_t *p, const uint8_t *e, double *value) {
    const uint8_t *q = p;
    uint64_t m = 0;
    size_t n = 0, k = 0;
    while (q < e && *q >= '0' && *q <= '9' && n <= SGB_AL_TS_DIGITS) {
        m = m * 10 + (uint64_t)(*q++ - '0');
        n++;
    }
    if (n == 0) return 0;
    if (q < e) {
        if (*q != '.' || q + 1 == e) return 0;
        for (q++; q < e && n <= SGB_AL_TS_DIGITS; q++, k++, n++) {
            if (*q < '0' || *q > '9') return 0;
            m = m * 10 + (uint64_t)(*q - '0');
        }
    }
    if (q < e || n > SGB_AL_TS_DIGITS) return 0;
    *value = (double)m / POW10[k];
    return 1;
}

static const uint8_t *find(const uint8_t *p, const uint8_t *e, uint8_t c) {
    const uint8_t *hit = memchr(p, c, (size_t)(e - p));
    return hit ? hit : e;
}

/* the host of a URL, as monitor/parse.py's host_of and _host find it (before lower-casing) */
static struct span host_of(const uint8_t *u, const uint8_t *ue) {
    const uint8_t *a = u, *ae = ue;
    for (const uint8_t *q = find(u, ue, ':'); q + 3 <= ue; q = find(q + 1, ue, ':')) {
        if (q[1] == '/' && q[2] == '/') {
            a = q + 3;
            ae = find(a, ue, '/');
            break;
        }
    }
    ae = find(a, ae, '?');
    ae = find(a, ae, '#');
    for (const uint8_t *q = ae; q > a; q--) {
        if (q[-1] == '@') {
            a = q;
            break;
        }
    }
    struct span host;
    if (a < ae && *a == '[') {
        host.p = a + 1;
        host.e = find(host.p, ae, ']');
    } else {
        host.p = a;
        host.e = find(a, ae, ':');
    }
    return host;
}

/* copy [p, e) and a space to *w; 0 if it does not fit before end */
static int put(uint8_t **w, const uint8_t *end, const uint8_t *p, const uint8_t *e, int lower) {
    size_t n = (size_t)(e - p);
    if ((size_t)(end - *w) < n + 1) return 0;
    uint8_t *o = *w;
    if (lower) {
        for (; p < e; p++) *o++ = (*p >= 'A' && *p <= 'Z') ? (uint8_t)(*p + 32) : *p;
    } else {
        memcpy(o, p, n);
        o += n;
    }
    *o++ = ' ';
    *w = o;
    return 1;
}

/* read one line [p, e); 1 with its numbers and fields written, 0 for a slow line */
static int scan_line(const uint8_t *p, const uint8_t *e, double *ts, int64_t *elapsed,
                     int64_t *status, int64_t *bytes, uint8_t **w, const uint8_t *end) {
    struct span f[FIELDS];
    int n = 0;
    const uint8_t *q = p;
    for (;;) {
        while (q < e && (*q == ' ' || *q == '\t')) q++;
        if (q == e) break;
        if (n == FIELDS) return 0;
        f[n].p = q;
        while (q < e && (uint8_t)(*q - 0x21) < 0x7f - 0x21) q++; /* printable, not a space */
        f[n].e = q;
        n++;
        if (q < e && *q != ' ' && *q != '\t') return 0; /* a byte no fast line holds */
    }
    if (n != FIELDS) return 0;
    const uint8_t *slash = find(f[3].p, f[3].e, '/');
    if (slash == f[3].e) return 0;
    if (!timestamp(f[0].p, f[0].e, ts) || !digits(f[1].p, f[1].e, elapsed) ||
        !digits(slash + 1, f[3].e, status) || !digits(f[4].p, f[4].e, bytes))
        return 0;
    const uint8_t *hier = find(f[8].p, f[8].e, '/');
    const uint8_t *peer = hier < f[8].e ? hier + 1 : f[8].e;
    struct span host = host_of(f[6].p, f[6].e);
    uint8_t *o = *w;
    if (!put(&o, end, f[2].p, f[2].e, 0) || !put(&o, end, f[3].p, slash, 0) ||
        !put(&o, end, f[5].p, f[5].e, 0) || !put(&o, end, f[6].p, f[6].e, 0) ||
        !put(&o, end, f[7].p, f[7].e, 0) || !put(&o, end, f[8].p, hier, 0) ||
        !put(&o, end, peer, f[8].e, 0) || !put(&o, end, f[9].p, f[9].e, 0) ||
        !put(&o, end, host.p, host.e, 1))
        return -1;
    *w = o;
    return 1;
}

int64_t sgb_al_scan(const uint8_t *buf, size_t size, size_t lines, uint8_t *fast, double *ts,
                    int64_t *elapsed, int64_t *status, int64_t *bytes, uint8_t *out,
                    size_t out_cap) {
    const uint8_t *p = buf, *bend = buf + size;
    uint8_t *w = out;
    const uint8_t *end = out + out_cap;
    for (size_t k = 0; k < lines; k++) {
        const uint8_t *e = find(p, bend, '\n');
        ts[k] = 0.0;
        elapsed[k] = status[k] = bytes[k] = 0;
        int got = scan_line(p, e, &ts[k], &elapsed[k], &status[k], &bytes[k], &w, end);
        if (got < 0) return -1;
        fast[k] = (uint8_t)got;
        if (!got) {
            ts[k] = 0.0;
            elapsed[k] = status[k] = bytes[k] = 0;
            if ((size_t)(end - w) < 9) return -1;
            memset(w, ' ', 9);
            w += 9;
        }
        p = e < bend ? e + 1 : bend;
    }
    return (int64_t)(w - out);
}

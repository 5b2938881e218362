/* Deciding, as squidguard_bloom/core/engine/engine.py decides (Engine.decide)
 * over the compiled lists, and which passes helper/welcome.py may welcome. */
#define _GNU_SOURCE /* memmem */

#include <string.h>

#include "listindex.h"
#include "fp_internal.h"

int fp_span_ok(const struct sgb_fp_program *p, uint32_t i) {
    return i < p->nspans && (uint64_t)p->spans[2 * i] + p->spans[2 * i + 1] <= p->text_size;
}

/* lists.literals.required_literals' prefilter: whether any literal of d occurs in furl
 * (or d's literals are unreadable). */
static int literal_hit(const struct sgb_fp_program *p, const struct sgb_fp_dest *d,
                       const struct target *t) {
    for (uint32_t j = 0; j < d->nliterals; j++) {
        uint32_t i = d->first_literal + j;
        if (i < d->first_literal || !fp_span_ok(p, i)) return 1;
        uint32_t len = p->spans[2 * i + 1];
        if (len == 0 || memmem(t->furl, t->furllen, p->text + p->spans[2 * i], len) != NULL)
            return 1;
    }
    return 0;
}

static int is_address_host(const struct target *t) {
    return fp_is_digit((uint8_t)t->furl[t->hostlen - 1]); /* lists.lookup._is_address */
}

/* lists.compiled's Match.redirect: whether the list record at off carries its own
 * redirect (1, *text set), not (0), or is unreadable (-1). */
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

/* Engine._scan for one dest (domain list, url list, expressions): 1 listed, 2 listed by
 * an entry with its own redirect (in *text), 0 not listed, -1 Python must look. */
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

/* Engine._sources then Engine.acl_for: the branch index of the client's first
 * matching source, or -1 for Python. */
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

/* Engine.decide for one parsed line whose client is addr: ANSWER_PASS, ANSWER_BLOCK (v
 * says by what) or TO_PYTHON. */
enum outcome fp_decide(const struct sgb_fp_program *p, const struct line *L, uint32_t addr,
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
    /* Engine._log_spec: the default acl's or the dest's, else the source's */
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

static int ieq(const uint8_t *s, size_t n, const char *word) {
    size_t w = strlen(word);
    if (n != w) return 0;
    for (size_t i = 0; i < n; i++)
        if (fp_lower(s[i]) != (uint8_t)word[i]) return 0;
    return 1;
}

/* welcome.WELCOME_METHODS: 1 GET or HEAD; 0 neither; -1 cannot tell (non-ASCII). */
int fp_welcome_method(const struct line *L) {
    for (size_t i = 0; i < L->methodlen; i++)
        if (L->method[i] >= 0x80) return -1;
    return ieq(L->method, L->methodlen, "get") || ieq(L->method, L->methodlen, "head");
}

/* WelcomeSettings.exempt_hosts: whether t's host is never welcomed. */
int fp_exempt(const struct sgb_fp_program *p, const struct target *t) {
    for (uint32_t j = 0; j < p->nexempt; j++) {
        uint32_t i = p->first_exempt + j;
        if (i < p->first_exempt || !fp_span_ok(p, i)) return 1;
        if (p->spans[2 * i + 1] == t->hostlen &&
            memcmp(p->text + p->spans[2 * i], t->furl, t->hostlen) == 0)
            return 1;
    }
    return 0;
}

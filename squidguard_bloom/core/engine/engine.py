"""THE DECISION ENGINE: squidGuard's per-request procedure over a loaded config.

:meth:`Engine.decide` is the only code that runs per request; everything it
needs (compiled lists, rewrite regexes, source lookups) is prepared in
:meth:`Engine.__init__`, and what depends on the clock (which ``time``
blocks are active) is recomputed at most once per minute.

The procedure (see docs/differences.md for where we deliberately differ):

1. the first active source (file order) matching the client address, FQDN
   and user; none -> the ``default`` acl;
2. that source's first active acl (or its ``else``), else ``default``;
3. the pass list (inherited from ``default`` when absent), left to right:
   each active dest is checked by domain list, url list, expressions; the
   first hit decides (``name`` allows, ``!name`` blocks); ``all``/``none``
   end the scan; ``in-addr`` decides for IP-address hosts; running out
   allows;
4. blocked: the first of per-entry redirect, dest redirect, dest rewrite,
   acl redirect, default redirect, expanded as a template; none -> pass;
5. allowed: the acl's (or default's) rewrite rules; no match -> pass;
6. ``continue`` sources hand an unchanged request to the next matching
   source, then to ``default``.
"""

from __future__ import annotations

import ipaddress
import time

from squidguard_bloom.core.config.model import (
    OUTSIDE,
    Acl,
    AclBranch,
    Config,
    Dest,
    LogSpec,
    PassItem,
    Restriction,
    Source,
)
from squidguard_bloom.core.engine.decision import (
    PASS,
    REDIRECT,
    REWRITE,
    UNPARSABLE,
    Decision,
    Policy,
)
from squidguard_bloom.core.engine.request import Request
from squidguard_bloom.core.engine.rewrite import RewriteBlock
from squidguard_bloom.core.engine.template import TemplateValues, expand, split_status
from squidguard_bloom.core.lists import open_list
from squidguard_bloom.core.logline import request_line
from squidguard_bloom.core.urlnorm import Target, parse_target
from squidguard_bloom.records import FrozenRecord, Record

_CACHE_LIMIT = 65536  # remembered (client, fqdn, user) -> source chains


class _Dest(Record):
    name: str
    domains: object | None  # DomainList
    urls: object | None  # UrlList
    expressions: object | None  # ExpressionList
    redirect: str | None
    rewrite: RewriteBlock | None
    log: LogSpec | None
    restriction: Restriction | None
    active_content: bool


class _Verdict(Record):
    allow: bool
    target: str  # the pass-list word that decided
    dest: _Dest | None = None
    entry: str = ""
    entry_redirect: str | None = None
    how: str = ""  # "domainlist" / "urllist" / "expressionlist" / terminator


class PlanSource(FrozenRecord):
    """An active source as the fast path sees it (see :meth:`Engine.fast_plan`)."""

    ips: tuple[tuple[str, int, int], ...] | None  # IPv4 (kind, a, b); None: no address test
    fqdn: bool  # also tests the client's domain
    user: bool  # also tests the user
    empty_user: bool  # ... and the empty user is one of its users
    log: LogSpec | None
    branch: int  # index into FastPlan.branches; -1: Python decides (``continue``)
    acl_name: str  # %s of its blocks: its acl's name, "default" when it has none


class PlanBranch(FrozenRecord):
    """An acl branch: its pass list as (word, negate, dest index), None: Python decides."""

    passes: tuple[tuple[str, bool, int], ...] | None  # word "dest", "all", "none", "in-addr"
    rewrite: bool  # allowed requests may be rewritten
    redirect: str | None  # template of blocks no dest redirects: its own, else default's


class FastPlan(FrozenRecord):
    """The decision procedure for the current time, reduced to what C can run.

    Sources in file order (inactive ones left out), the branches they lead
    to, and the dests those branches check (inactive dests and unknown words
    left out of pass lists).
    """

    sources: tuple[PlanSource, ...]
    branches: tuple[PlanBranch, ...]
    dests: tuple[_Dest, ...]
    default_branch: int
    default_log: LogSpec | None


def _dotted_v4(text: str) -> int | None:
    """A client address as squidGuard reads it, or None.

    squidGuard takes 1 to 4 dot-separated decimal numbers, an optional dot
    after the last, each read modulo 2**32 and at most 255, and pads the
    missing ones on the right with zeros: ``10.1`` is 10.1.0.0, ``10.`` is
    10.0.0.0, ``010.1.2.3`` is 10.1.2.3.  Squid only sends dotted quads;
    this is so that any other client field picks the same source.
    """
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if len(parts) > 4:
        return None
    value = 0
    for part in parts:
        if not (part.isascii() and part.isdigit()):
            return None
        octet = 0
        for digit in part.encode():
            octet = (octet * 10 + digit - 48) & 0xFFFFFFFF
        if octet > 255:
            return None
        value = value << 8 | octet
    return value << 8 * (4 - len(parts))


def _client_address(text: str) -> tuple[int, int]:
    """(version, integer) of a client address: IPv4 as squidGuard reads it, IPv6 (an
    IPv4-mapped one is its IPv4 address); anything else 0.0.0.0, as in squidGuard."""
    v4 = _dotted_v4(text)
    if v4 is not None:
        return 4, v4
    if ":" not in text:
        return 4, 0
    try:
        addr = ipaddress.IPv6Address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return 4, 0
    if addr.ipv4_mapped is not None:
        return 4, int(addr.ipv4_mapped)
    return 6, int(addr)


class Engine(Policy):
    """squidGuard's decision procedure over one loaded configuration."""

    def __init__(self, config: Config, *, explain: bool = False) -> None:
        self.config = config
        self.explain = explain
        lists: dict[tuple[str, str], object] = {}
        self.notes: list[str] = []  # what loading the lists has to tell the admin

        def load(kind: str, path: str | None) -> object | None:
            if path is None:
                return None
            key = (kind, path)
            if key not in lists:
                lists[key] = open_list(kind, path, self.notes)
            return lists[key]

        self._rewrites = {n: RewriteBlock(n, rw.rules) for n, rw in config.rewrites.items()}
        self._dests: dict[str, _Dest] = {}
        for name, d in config.dests.items():
            self._dests[name] = self._make_dest(d, load)
        self.list_count = len(lists)
        self._default = config.default_acl
        self._minute = -1
        self._active: dict[str, bool] = {}
        self._cache: dict[tuple[str, str, str], list[Source]] = {}
        self._acl_cache: dict[str, tuple[Acl, AclBranch, bool] | None] = {}
        self._plan: FastPlan | None = None
        self._plan_key: tuple[bool, ...] = ()
        self._plan_minute = -1.0

    def _make_dest(self, d: Dest, load: object) -> _Dest:
        assert callable(load)
        content = bool(d.domainlist or d.urllist or d.expressionlist or d.redirect or d.rewrite)
        return _Dest(
            name=d.name,
            domains=load("domain", d.domainlist),
            urls=load("url", d.urllist),
            expressions=load("expression", d.expressionlist),
            redirect=d.redirect,
            rewrite=self._rewrites.get(d.rewrite) if d.rewrite else None,
            log=d.log,
            restriction=d.restriction,
            active_content=content,
        )

    # -- time -------------------------------------------------------------

    def _tick(self, now: float) -> None:
        minute = int(now // 60)
        if minute == self._minute:
            return
        self._minute = minute
        when = time.localtime(now)
        self._active = {name: spec.active(when) for name, spec in self.config.times.items()}
        self._cache.clear()
        self._acl_cache.clear()

    def _on(self, restriction: Restriction | None) -> bool:
        if restriction is None:
            return True
        active = self._active.get(restriction.time, False)
        return not active if restriction.kind == OUTSIDE else active

    # -- sources and acls -------------------------------------------------

    def _sources(self, client: str, fqdn: str, user: str) -> list[Source]:
        """Active sources matching this client, in file order."""
        key = (client, fqdn, user)
        found = self._cache.get(key)
        if found is not None:
            return found
        version, addr = _client_address(client)
        luser = user.lower()
        found = []
        for src in self.config.sources:
            if not (src.has_ip or src.domains or src.has_user) or not self._on(src.restriction):
                continue
            if src.has_ip and not _ip_matches(src, version, addr):
                continue
            if src.domains and not (fqdn and any(fqdn.endswith(d) for d in src.domains)):
                continue
            if src.has_user and luser not in src.users:
                continue
            found.append(src)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found

    def _acl_for(self, source: Source) -> tuple[Acl, AclBranch, bool] | None:
        key = source.name
        if key in self._acl_cache:
            return self._acl_cache[key]
        found = self._find_acl(source)
        self._acl_cache[key] = found
        return found

    def _find_acl(self, source: Source) -> tuple[Acl, AclBranch, bool] | None:
        for acl in self.config.acls:
            if acl.source != source.name:
                continue
            if self._on(acl.restriction):
                return acl, acl.branch, False
            if acl.other is not None:
                return acl, acl.other, True
        return None

    def _default_branch(self) -> tuple[AclBranch, bool]:
        acl = self._default
        if self._on(acl.restriction) or acl.other is None:
            return acl.branch, False
        return acl.other, True

    # -- the pass list ----------------------------------------------------

    def _passes_of(self, branch: AclBranch) -> list[PassItem] | None:
        """The pass list a branch uses: its own, else the default acl's."""
        return branch.passes if branch.passes is not None else self._default.branch.passes

    def _rewrite_of(self, branch: AclBranch) -> RewriteBlock | None:
        """The rewrite block applied to what a branch allows, if any."""
        rw_name = branch.rewrite
        if rw_name in (None, "none"):
            rw_name = self._default.branch.rewrite
        return self._rewrites.get(rw_name) if rw_name and rw_name != "none" else None

    def _usable(self, word: str) -> _Dest | None:
        """The dest a pass-list word checks now, or None when the scan skips it."""
        d = self._dests.get(word)
        if d is None or not d.active_content or not self._on(d.restriction):
            return None
        return d

    def _scan(self, passes: list[PassItem] | None, target: Target) -> _Verdict:
        if passes is None:
            return _Verdict(False, "unknown", how="no pass list")
        for item in passes:
            word = item.word
            if word == "all":
                return _Verdict(not item.negate, "all", how="all")
            if word == "none":
                return _Verdict(item.negate, "none", how="none")
            if word == "in-addr":
                if target.dotted:
                    return _Verdict(not item.negate, "in-addr", how="in-addr")
                continue
            d = self._usable(word)
            if d is None:
                continue
            hit = None
            how = ""
            if d.domains is not None:
                hit = d.domains.lookup(target.host)  # type: ignore[attr-defined]
                how = "domainlist"
            if hit is None and d.urls is not None:
                hit = d.urls.lookup(target)  # type: ignore[attr-defined]
                how = "urllist"
            if hit is None and d.expressions is not None:
                hit = d.expressions.lookup(target.furl)  # type: ignore[attr-defined]
                if hit is None and target.ufurl:  # an IDN host, also as it came
                    hit = d.expressions.lookup(target.ufurl)  # type: ignore[attr-defined]
                how = "expressionlist"
            if hit is not None:
                return _Verdict(not item.negate, d.name, d, hit.entry, hit.redirect, how)
        return _Verdict(True, "unknown", how="end of pass list")

    # -- the fast path's program -----------------------------------------

    def fast_plan(self, now: float) -> FastPlan:
        """The plan for the time blocks active at now (the same object until they change)."""
        minute = now // 60
        if self._plan is not None and minute == self._plan_minute:
            return self._plan  # the usual call: the minute it was checked for
        self._tick(now)
        key = tuple(self._active.values())
        if self._plan is None or key != self._plan_key:
            self._plan = self._make_plan()
            self._plan_key = key
        self._plan_minute = minute
        return self._plan

    def _make_plan(self) -> FastPlan:
        branches: list[PlanBranch] = []
        branch_index: dict[int, int] = {}
        dests: list[_Dest] = []
        dest_index: dict[str, int] = {}

        def add_branch(branch: AclBranch) -> int:
            if id(branch) not in branch_index:
                branch_index[id(branch)] = len(branches)
                branches.append(plan_branch(branch))
            return branch_index[id(branch)]

        def plan_branch(branch: AclBranch) -> PlanBranch:
            passes = self._passes_of(branch)
            rewrite = self._rewrite_of(branch) is not None
            redirect = self._branch_redirect(branch)
            if passes is None:
                return PlanBranch(None, rewrite, redirect)
            items: list[tuple[str, bool, int]] = []
            for item in passes:
                if item.word in ("all", "none"):
                    items.append((item.word, item.negate, -1))
                    break
                if item.word == "in-addr":
                    items.append((item.word, item.negate, -1))
                    continue
                d = self._usable(item.word)
                if d is None:
                    continue
                if d.name not in dest_index:
                    dest_index[d.name] = len(dests)
                    dests.append(d)
                items.append(("dest", item.negate, dest_index[d.name]))
            return PlanBranch(tuple(items), rewrite, redirect)

        default_branch = add_branch(self._default_branch()[0])
        sources: list[PlanSource] = []
        for src in self.config.sources:
            if not (src.has_ip or src.domains or src.has_user) or not self._on(src.restriction):
                continue
            found = self._acl_for(src)
            branch = add_branch(found[1]) if found is not None else default_branch
            ips = (tuple((e.kind, e.a, e.b) for e in src.ips if e.version == 4)
                   if src.has_ip else None)
            sources.append(PlanSource(ips, bool(src.domains), src.has_user, "" in src.users,
                                      src.log, -1 if src.cont else branch,
                                      found[0].source if found is not None else "default"))
        return FastPlan(tuple(sources), tuple(branches), tuple(dests), default_branch,
                        self._default.branch.log)

    # -- the whole procedure ----------------------------------------------

    def decide(self, req: Request, now: float) -> Decision:
        """The verdict on req at (emulated) time now."""
        target = parse_target(req.url)
        if target is None:
            return Decision(UNPARSABLE, explanation="no host in the URL",
                            url="squidGuard error parsing squid line")
        self._tick(now)
        chain = self._sources(req.client, req.fqdn, req.user)
        why: list[str] = []
        i = 0
        while True:
            src = chain[i] if i < len(chain) else None
            found = self._acl_for(src) if src is not None else None
            if found is None:
                branch, in_else = self._default_branch()
                acl_name = "default"
            else:
                acl, branch, in_else = found
                acl_name = acl.source
            decision = self._decide_branch(req, target, src, acl_name, branch, in_else, why)
            if decision.action != PASS or src is None or not src.cont:
                return decision
            # "continue": an unchanged request goes on to the next matching source.
            i += 1

    def _decide_branch(self, req: Request, target: Target, src: Source | None, acl_name: str,
                       branch: AclBranch, in_else: bool, why: list[str]) -> Decision:
        verdict = self._scan(self._passes_of(branch), target)
        if self.explain:
            who = f"source {src.name}" if src is not None else "no source matched"
            why.append(f"{who}; acl {acl_name}{' (else)' if in_else else ''}")
            if verdict.dest is not None:
                why.append(f"dest {verdict.dest.name} {verdict.how} entry {verdict.entry!r}"
                           f" -> {'pass' if verdict.allow else 'block'}")
            else:
                why.append(f"{verdict.how} -> {'pass' if verdict.allow else 'block'}")
        log_spec = self._log_spec(src, verdict)
        if not verdict.allow:
            text, how = self._block_redirect(verdict, branch, target)
            if text is None:
                if self.explain:
                    why.append("blocked, but no redirect is configured: passes (as squidGuard)")
                return self._finish(PASS, "", None, req, target, acl_name, verdict, "-",
                                    log_spec, why)
            values = TemplateValues(req.client, req.fqdn, req.user, acl_name, verdict.target,
                                    target.orig)
            status, url = expand(text, values)
            if self.explain:
                why.append(f"redirect from {how}: {url}")
            return self._finish(REDIRECT if status else REWRITE, url, status, req, target,
                                acl_name, verdict, "-", log_spec, why)
        block = self._rewrite_of(branch)
        if block is not None:
            result = block.apply(target.orig)
            if result is not None:
                status, url = split_status(result)
                if self.explain:
                    why.append(f"rewrite {block.name}: {url}")
                rw_log = self.config.rewrites[block.name].log
                if rw_log is not None:
                    log = ((rw_log.path, self._line(req, target, acl_name, verdict.target,
                                                    block.name, "REWRITE", rw_log)),)
                    return Decision(REDIRECT if status else REWRITE, url, status or 302,
                                    target.host, "; ".join(why), log, acl_name, verdict.target)
                return self._finish(REDIRECT if status else REWRITE, url, status, req, target,
                                    acl_name, verdict, "-", log_spec, why)
        return self._finish(PASS, "", None, req, target, acl_name, verdict, "-", log_spec, why)

    def _finish(self, action: str, url: str, status: int | None, req: Request, target: Target,
                acl_name: str, verdict: _Verdict, rewrite: str, log_spec: LogSpec | None,
                why: list[str]) -> Decision:
        log: tuple[tuple[str, str], ...] = ()
        if log_spec is not None and (action != PASS or log_spec.verbose):
            line = self._line(req, target, acl_name, verdict.target, rewrite,
                              "PASS" if action == PASS else "REDIRECT", log_spec)
            log = ((log_spec.path, line),)
        return Decision(action, url, status or 302, target.host,
                        "; ".join(why) if why else "", log, acl_name, verdict.target)

    def _line(self, req: Request, target: Target, acl_name: str, word: str, rewrite: str,
              action: str, spec: LogSpec) -> str:
        user = "" if spec.anonymous else req.user.lower()
        return request_line(acl_name, word, rewrite, target.orig, req.client, req.fqdn, user,
                            req.method, action)

    def _log_spec(self, src: Source | None, verdict: _Verdict) -> LogSpec | None:
        spec = src.log if src is not None else None
        if verdict.dest is None:
            default_log = self._default.branch.log
            if default_log is not None:
                spec = default_log
        elif verdict.dest.log is not None:
            spec = verdict.dest.log
        return spec

    def _block_redirect(self, verdict: _Verdict, branch: AclBranch,
                        target: Target) -> tuple[str | None, str]:
        d = verdict.dest
        if d is not None:
            if verdict.entry_redirect:
                return verdict.entry_redirect, f"list entry {verdict.entry!r}"
            if d.redirect:
                return d.redirect, f"dest {d.name}"
            if d.rewrite is not None:
                result = d.rewrite.apply(target.orig)
                if result is not None:
                    return result, f"dest {d.name} rewrite {d.rewrite.name}"
        own = branch.redirect and branch.redirect != "default"
        return self._branch_redirect(branch), "the acl" if own else "the default acl"

    def _branch_redirect(self, branch: AclBranch) -> str | None:
        """The redirect of a block that no dest redirects: the acl's, else default's."""
        if branch.redirect and branch.redirect != "default":
            return branch.redirect
        return self._default.branch.redirect


def _ip_matches(src: Source, version: int, addr: int) -> bool:
    for e in src.ips:
        if e.version != version:
            # IPv6 clients also match IPv4 entries holding 0.0.0.0, which is
            # what squidGuard turns every non-IPv4 client into.
            if version == 6 and e.version == 4 and _entry_has(e.kind, e.a, e.b, 0):
                return True
            continue
        if _entry_has(e.kind, e.a, e.b, addr):
            return True
    return False


def _entry_has(kind: str, a: int, b: int, addr: int) -> bool:
    if kind == "mask":
        return addr & b == a
    return a <= addr <= b

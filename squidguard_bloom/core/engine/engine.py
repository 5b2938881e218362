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
from collections.abc import Callable

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
from squidguard_bloom.core.lists.compiled import CompiledDomainList, CompiledUrlList
from squidguard_bloom.core.lists.lookup import DomainList, ExpressionList, UrlList
from squidguard_bloom.core.lists.store import open_list
from squidguard_bloom.core.logline import request_line
from squidguard_bloom.core.urlnorm import Target, parse_target
from squidguard_bloom.records import Record

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from squidguard_bloom.core.lists.store import AnyList

_CACHE_LIMIT = 65536  # remembered (client, fqdn, user) -> source chains


class LoadedDest(Record):
    """A dest with its lists loaded: what a pass-list word checks."""

    name: str
    domains: DomainList | CompiledDomainList | None
    urls: UrlList | CompiledUrlList | None
    expressions: ExpressionList | None
    redirect: str | None
    rewrite: RewriteBlock | None
    log: LogSpec | None
    restriction: Restriction | None
    active_content: bool


class _Verdict(Record):
    allow: bool
    target: str  # the pass-list word that decided
    dest: LoadedDest | None = None
    entry: str = ""
    entry_redirect: str | None = None
    how: str = ""  # "domainlist" / "urllist" / "expressionlist" / terminator


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
        lists: dict[tuple[str, str], AnyList] = {}
        self.notes: list[str] = []  # what loading the lists has to tell the admin

        def load(kind: str, path: str | None) -> AnyList | None:
            if path is None:
                return None
            key = (kind, path)
            if key not in lists:
                lists[key] = open_list(kind, path, self.notes)
            return lists[key]

        self._rewrites = {n: RewriteBlock(n, rw.rules) for n, rw in config.rewrites.items()}
        self._dests: dict[str, LoadedDest] = {}
        for name, d in config.dests.items():
            self._dests[name] = self._make_dest(d, load)
        self.list_count = len(lists)
        self._default = config.default_acl
        self._minute = -1
        self._active: dict[str, bool] = {}
        self._cache: dict[tuple[str, str, str], list[Source]] = {}
        self._acl_cache: dict[str, tuple[Acl, AclBranch, bool] | None] = {}

    def _make_dest(self, d: Dest, load: Callable[[str, str | None], AnyList | None]) \
            -> LoadedDest:
        domains, urls, expressions = (load("domain", d.domainlist), load("url", d.urllist),
                                      load("expression", d.expressionlist))
        assert not isinstance(domains, (UrlList, CompiledUrlList, ExpressionList))
        assert not isinstance(urls, (DomainList, CompiledDomainList, ExpressionList))
        assert expressions is None or isinstance(expressions, ExpressionList)
        return LoadedDest(
            name=d.name,
            domains=domains,
            urls=urls,
            expressions=expressions,
            redirect=d.redirect,
            rewrite=self._rewrites.get(d.rewrite) if d.rewrite else None,
            log=d.log,
            restriction=d.restriction,
            active_content=d.has_content,
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

    def active_times(self, now: float) -> tuple[bool, ...]:
        """Whether each time block is active at now (in file order; rechecked once a minute)."""
        self._tick(now)
        return tuple(self._active.values())

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
            if not self.source_active(src):
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

    def source_active(self, src: Source) -> bool:
        """Whether src can match now: it has content (squidGuard sets an empty source
        inactive) and its time restriction holds."""
        return src.has_content and self._on(src.restriction)

    def acl_for(self, source: Source) -> tuple[Acl, AclBranch, bool] | None:
        """The acl of source in force now, the branch to use and whether it is the else."""
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

    def default_branch(self) -> tuple[AclBranch, bool]:
        """The default acl's branch in force now, and whether it is the else."""
        acl = self._default
        if self._on(acl.restriction) or acl.other is None:
            return acl.branch, False
        return acl.other, True

    # -- the pass list ----------------------------------------------------

    def passes_of(self, branch: AclBranch) -> list[PassItem] | None:
        """The pass list a branch uses: its own, else the default acl's."""
        return branch.passes if branch.passes is not None else self._default.branch.passes

    def rewrite_of(self, branch: AclBranch) -> RewriteBlock | None:
        """The rewrite block applied to what a branch allows, if any."""
        rw_name = branch.rewrite
        if rw_name in (None, "none"):
            rw_name = self._default.branch.rewrite
        return self._rewrites.get(rw_name) if rw_name and rw_name != "none" else None

    def usable(self, word: str) -> LoadedDest | None:
        """The dest a pass-list word checks now, or None when the scan skips it."""
        d = self._dests.get(word)
        if d is None or not d.active_content or not self._on(d.restriction):
            return None
        return d

    @property
    def default_log(self) -> LogSpec | None:
        """The default acl's log: where requests no source matched are logged."""
        return self._default.branch.log

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
            d = self.usable(word)
            if d is None:
                continue
            hit = None
            how = ""
            if d.domains is not None:
                hit = d.domains.lookup(target.host)
                how = "domainlist"
            if hit is None and d.urls is not None:
                hit = d.urls.lookup(target)
                how = "urllist"
            if hit is None and d.expressions is not None:
                hit = d.expressions.lookup(target.furl)
                if hit is None and target.ufurl:  # an IDN host, also as it came
                    hit = d.expressions.lookup(target.ufurl)
                how = "expressionlist"
            if hit is not None:
                return _Verdict(not item.negate, d.name, d, hit.entry, hit.redirect, how)
        return _Verdict(True, "unknown", how="end of pass list")

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
            found = self.acl_for(src) if src is not None else None
            if found is None:
                branch, in_else = self.default_branch()
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
        verdict = self._scan(self.passes_of(branch), target)
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
        block = self.rewrite_of(branch)
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
        return self.branch_redirect(branch), "the acl" if own else "the default acl"

    def branch_redirect(self, branch: AclBranch) -> str | None:
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

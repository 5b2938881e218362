"""The parsed squidGuard.conf: plain data, no I/O, no parsing.

The parser (:mod:`squidguard_bloom.config.parser`) builds these; the
decision engine (:mod:`squidguard_bloom.policy`) reads them.  Names keep
squidGuard's: a *source* (``src``) says who, a *dest* says which sites, an
*acl* says which dests a source may reach, a *time* says when.
"""

from __future__ import annotations

import time as _time

from squidguard_bloom.records import FrozenRecord, Record

WITHIN = "within"
OUTSIDE = "outside"


class Pos(FrozenRecord):
    """Where something was written: file, 1-based line and column."""

    __slots__ = ("file", "line", "col")
    file: str
    line: int
    col: int

    def __init__(self, file: str, line: int, col: int = 1) -> None:
        self._set(file=file, line=line, col=col)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Diagnostic(FrozenRecord):
    """One problem found while reading the configuration or a file it names."""

    __slots__ = ("pos", "message", "severity")
    pos: Pos
    message: str  # e.g. "found '}', expected a dest name"
    severity: str  # "error" or "warning"

    def __init__(self, pos: Pos, message: str, severity: str = "error") -> None:
        self._set(pos=pos, message=message, severity=severity)

    def __str__(self) -> str:
        return f"{self.pos}: {self.severity}: {self.message}"


class TimeElement(FrozenRecord):
    """One OR-ed element of a ``time`` block.

    ``weekdays`` (0 = Monday … 6 = Sunday) is set for ``weekly`` entries,
    ``None`` for ``date`` entries.  ``date_from``/``date_to`` are
    (year, month, day) with ``None`` standing for ``*``; ``date_to`` is set
    only for a range.  Active when the day matches and
    ``start <= minute_of_day < end`` (minutes; 24:00 is 1440).
    """

    __slots__ = ("weekdays", "date_from", "date_to", "start", "end")
    weekdays: frozenset[int] | None
    date_from: tuple[int | None, int | None, int | None] | None
    date_to: tuple[int, int, int] | None
    start: int
    end: int

    def __init__(self, weekdays: frozenset[int] | None,
                 date_from: tuple[int | None, int | None, int | None] | None,
                 date_to: tuple[int, int, int] | None, start: int, end: int) -> None:
        self._set(weekdays=weekdays, date_from=date_from, date_to=date_to, start=start, end=end)


class TimeSpec(Record):
    """A ``time NAME { … }`` block."""

    __slots__ = ("name", "elements", "pos")

    def __init__(self, name: str, elements: list[TimeElement], pos: Pos) -> None:
        self.name = name
        self.elements = elements
        self.pos = pos

    def active(self, when: _time.struct_time) -> bool:
        """Whether any element covers the local time ``when``."""
        from squidguard_bloom.config.timespec import is_active  # noqa: PLC0415 - import cycle

        return is_active(self.elements, when)


class Restriction(FrozenRecord):
    """``within NAME`` or ``outside NAME``: when a block applies."""

    __slots__ = ("kind", "time")
    kind: str  # WITHIN or OUTSIDE
    time: str  # name of a TimeSpec in Config.times

    def __init__(self, kind: str, time: str) -> None:
        self._set(kind=kind, time=time)


class LogSpec(FrozenRecord):
    """``log|logfile [anonymous] [verbose] FILE``; path already resolved against logdir."""

    __slots__ = ("path", "anonymous", "verbose")
    path: str
    anonymous: bool
    verbose: bool

    def __init__(self, path: str, anonymous: bool = False, verbose: bool = False) -> None:
        self._set(path=path, anonymous=anonymous, verbose=verbose)


class IPEntry(FrozenRecord):
    """One client-address entry of a source.

    ``kind`` "mask": matches when ``addr & b == a`` (CIDR is stored masked;
    the netmask form is stored as written, as squidGuard does).  ``kind``
    "range": matches when ``a <= addr <= b``.  ``version`` is 4 or 6.
    """

    __slots__ = ("kind", "a", "b", "version")
    kind: str
    a: int
    b: int
    version: int

    def __init__(self, kind: str, a: int, b: int, version: int = 4) -> None:
        self._set(kind=kind, a=a, b=b, version=version)


class Source(Record):
    """A ``src|source NAME { … }`` block.  Kinds are AND-ed, values OR-ed."""

    __slots__ = ("name", "pos", "ips", "has_ip", "domains", "users", "has_user", "restriction",
                 "log", "cont")

    def __init__(self, name: str, pos: Pos, ips: list[IPEntry] | None = None,
                 has_ip: bool = False, domains: list[str] | None = None,
                 users: set[str] | None = None, has_user: bool = False,
                 restriction: Restriction | None = None, log: LogSpec | None = None,
                 cont: bool = False) -> None:
        self.name = name
        self.pos = pos
        self.ips: list[IPEntry] = [] if ips is None else ips  # from ip lines and iplist files
        self.has_ip = has_ip  # ips is not empty (an empty or unreadable iplist adds nothing)
        self.domains: list[str] = [] if domains is None else domains  # client FQDN suffixes
        self.users: set[str] = set() if users is None else users  # lower-cased: user, userlist
        self.has_user = has_user  # a user or userlist line was written
        self.restriction = restriction
        self.log = log
        self.cont = cont  # the ``continue`` keyword

    @property
    def has_content(self) -> bool:
        """False when squidGuard would set the source inactive: it never matches."""
        return self.has_ip or bool(self.domains) or self.has_user


class RewriteRule(FrozenRecord):
    """``s@REGEX@REPLACEMENT@FLAGS`` (escapes ``\\@``/``\\}`` already undone)."""

    __slots__ = ("pattern", "replacement", "flags", "pos")
    pattern: str
    replacement: str
    flags: str  # any of "girR"
    pos: Pos

    def __init__(self, pattern: str, replacement: str, flags: str, pos: Pos) -> None:
        self._set(pattern=pattern, replacement=replacement, flags=flags, pos=pos)


class Rewrite(Record):
    """A ``rew|rewrite NAME { … }`` block."""

    __slots__ = ("name", "pos", "rules", "restriction", "log")

    def __init__(self, name: str, pos: Pos, rules: list[RewriteRule] | None = None,
                 restriction: Restriction | None = None, log: LogSpec | None = None) -> None:
        self.name = name
        self.pos = pos
        self.rules: list[RewriteRule] = [] if rules is None else rules
        self.restriction = restriction  # parsed, not enforced (as squidGuard)
        self.log = log


class Dest(Record):
    """A ``dest|destination NAME { … }`` block.  List paths are absolute."""

    __slots__ = ("name", "pos", "domainlist", "urllist", "expressionlist", "redirect", "rewrite",
                 "restriction", "log")

    def __init__(self, name: str, pos: Pos, domainlist: str | None = None,
                 urllist: str | None = None, expressionlist: str | None = None,
                 redirect: str | None = None, rewrite: str | None = None,
                 restriction: Restriction | None = None, log: LogSpec | None = None) -> None:
        self.name = name
        self.pos = pos
        self.domainlist = domainlist
        self.urllist = urllist
        self.expressionlist = expressionlist
        self.redirect = redirect
        self.rewrite = rewrite  # name of a Rewrite
        self.restriction = restriction
        self.log = log

    @property
    def has_content(self) -> bool:
        """False when squidGuard would set the dest inactive: pass lists skip it."""
        return bool(self.domainlist or self.urllist or self.expressionlist or self.redirect
                    or self.rewrite)


class PassItem(FrozenRecord):
    """One word of a ``pass`` list: a dest name, or all/any/none/in-addr."""

    __slots__ = ("word", "negate")
    word: str  # dest name, "all" (any is stored as "all"), "none", "in-addr", "dnsbl:…"
    negate: bool  # written with "!"

    def __init__(self, word: str, negate: bool = False) -> None:
        self._set(word=word, negate=negate)


class AclBranch(Record):
    """The content of one ``{ … }`` in the acl block."""

    __slots__ = ("pos", "passes", "redirect", "rewrite", "log")

    def __init__(self, pos: Pos, passes: list[PassItem] | None = None,
                 redirect: str | None = None, rewrite: str | None = None,
                 log: LogSpec | None = None) -> None:
        self.pos = pos
        self.passes = passes  # None: no pass line (inherit default's)
        self.redirect = redirect  # "default" means default's redirect
        self.rewrite = rewrite  # rewrite name, or "none"
        self.log = log  # only honoured in default


class Acl(Record):
    """``NAME [within|outside TIME] { … } [else { … }]`` in the acl block."""

    __slots__ = ("source", "branch", "restriction", "other")

    def __init__(self, source: str, branch: AclBranch, restriction: Restriction | None = None,
                 other: AclBranch | None = None) -> None:
        self.source = source  # a Source name, or "default"
        self.branch = branch
        self.restriction = restriction
        self.other = other  # the else branch


class WelcomeConfig(FrozenRecord):
    """Our ``welcome { … }`` extension block (see docs/config.md)."""

    __slots__ = ("redirect", "pos", "key", "capacity", "error", "state", "window", "status",
                 "exempt_hosts", "log")
    redirect: str
    pos: Pos
    key: str  # "ip" or "user"
    capacity: int
    error: float
    state: str  # absolute path; the parser fills in dbhome/welcome.bloom
    window: float | None  # seconds
    status: int
    exempt_hosts: frozenset[str]  # lower-case host names, the redirect's own included
    log: LogSpec | None

    def __init__(self, redirect: str, pos: Pos, key: str = "ip", capacity: int = 1_000_000,
                 error: float = 0.001, state: str = "", window: float | None = None,
                 status: int = 302, exempt_hosts: frozenset[str] = frozenset(),
                 log: LogSpec | None = None) -> None:
        self._set(redirect=redirect, pos=pos, key=key, capacity=capacity, error=error,
                  state=state, window=window, status=status, exempt_hosts=exempt_hosts, log=log)


class Config(Record):
    """A whole configuration, as read from ``path``."""

    __slots__ = ("path", "dbhome", "logdir", "times", "sources", "dests", "rewrites", "acls",
                 "welcome", "emergency", "warnings")

    def __init__(self, path: str, dbhome: str, logdir: str,
                 times: dict[str, TimeSpec] | None = None, sources: list[Source] | None = None,
                 dests: dict[str, Dest] | None = None, rewrites: dict[str, Rewrite] | None = None,
                 acls: list[Acl] | None = None, welcome: WelcomeConfig | None = None,
                 emergency: str | None = None, warnings: list[Diagnostic] | None = None) -> None:
        self.path = path
        self.dbhome = dbhome
        self.logdir = logdir
        self.times: dict[str, TimeSpec] = {} if times is None else times
        self.sources: list[Source] = [] if sources is None else sources  # file order matters
        self.dests: dict[str, Dest] = {} if dests is None else dests
        self.rewrites: dict[str, Rewrite] = {} if rewrites is None else rewrites
        self.acls: list[Acl] = [] if acls is None else acls  # file order, default included
        self.welcome = welcome
        self.emergency = emergency  # our "emergency pass|block URL" setting, as written
        self.warnings: list[Diagnostic] = [] if warnings is None else warnings

    @property
    def default_acl(self) -> Acl:
        """The ``default`` acl (the parser guarantees there is one)."""
        for acl in self.acls:
            if acl.source == "default":
                return acl
        raise LookupError("no default acl")  # pragma: no cover - parser refuses this

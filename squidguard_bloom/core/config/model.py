"""The parsed squidGuard.conf: plain data, no I/O, no parsing.

The parser (:mod:`squidguard_bloom.core.config.parser`) builds these; the
decision engine (:mod:`squidguard_bloom.core.engine.engine`) reads them.  Names keep
squidGuard's: a *source* (``src``) says who, a *dest* says which sites, an
*acl* says which dests a source may reach, a *time* says when.
"""

from __future__ import annotations

import time as _time

from squidguard_bloom.records import FrozenRecord, Record, field

WITHIN = "within"
OUTSIDE = "outside"


class Pos(FrozenRecord):
    """Where something was written: file, 1-based line and column."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Diagnostic(FrozenRecord):
    """One problem found while reading the configuration or a file it names."""

    pos: Pos
    message: str  # e.g. "found '}', expected a dest name"
    severity: str = "error"  # "error" or "warning"

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

    weekdays: frozenset[int] | None
    date_from: tuple[int | None, int | None, int | None] | None
    date_to: tuple[int, int, int] | None
    start: int
    end: int


class TimeSpec(Record):
    """A ``time NAME { … }`` block."""

    name: str
    elements: list[TimeElement]
    pos: Pos

    def active(self, when: _time.struct_time) -> bool:
        """Whether any element covers the local time ``when`` (weekdays 0 = Monday)."""
        minute = when.tm_hour * 60 + when.tm_min
        for e in self.elements:
            if not e.start <= minute < e.end:
                continue
            if e.weekdays is not None:
                if when.tm_wday in e.weekdays:
                    return True
            elif _date_matches(e, when):
                return True
        return False


def _date_matches(e: TimeElement, when: _time.struct_time) -> bool:
    today = (when.tm_year, when.tm_mon, when.tm_mday)
    if e.date_from is None:
        return False
    if e.date_to is not None:
        return e.date_from <= today <= e.date_to
    return all(want is None or want == got for want, got in zip(e.date_from, today, strict=True))


class Restriction(FrozenRecord):
    """``within NAME`` or ``outside NAME``: when a block applies."""

    kind: str  # WITHIN or OUTSIDE
    time: str  # name of a TimeSpec in Config.times


class LogSpec(FrozenRecord):
    """``log|logfile [anonymous] [verbose] FILE``; path already resolved against logdir."""

    path: str
    anonymous: bool = False
    verbose: bool = False


class IPEntry(FrozenRecord):
    """One client-address entry of a source.

    ``kind`` "mask": matches when ``addr & b == a`` (CIDR is stored masked;
    the netmask form is stored as written, as squidGuard does).  ``kind``
    "range": matches when ``a <= addr <= b``.  ``version`` is 4 or 6.
    """

    kind: str
    a: int
    b: int
    version: int = 4


class Source(Record):
    """A ``src|source NAME { … }`` block.  Kinds are AND-ed, values OR-ed."""

    name: str
    pos: Pos
    ips: list[IPEntry] = field(default_factory=list)  # from ip lines and iplist files
    has_ip: bool = False  # ips is not empty (an empty or unreadable iplist adds nothing)
    domains: list[str] = field(default_factory=list)  # client FQDN suffixes
    users: set[str] = field(default_factory=set)  # lower-cased: user, userlist
    has_user: bool = False  # a user or userlist line was written
    restriction: Restriction | None = None
    log: LogSpec | None = None
    cont: bool = False  # the ``continue`` keyword

    @property
    def has_content(self) -> bool:
        """False when squidGuard would set the source inactive: it never matches."""
        return self.has_ip or bool(self.domains) or self.has_user


class RewriteRule(FrozenRecord):
    """``s@REGEX@REPLACEMENT@FLAGS`` (escapes ``\\@``/``\\}`` already undone)."""

    pattern: str
    replacement: str
    flags: str  # any of "girR"
    pos: Pos


class Rewrite(Record):
    """A ``rew|rewrite NAME { … }`` block."""

    name: str
    pos: Pos
    rules: list[RewriteRule] = field(default_factory=list)
    restriction: Restriction | None = None  # parsed, not enforced (as squidGuard)
    log: LogSpec | None = None


class Dest(Record):
    """A ``dest|destination NAME { … }`` block.  List paths are absolute."""

    name: str
    pos: Pos
    domainlist: str | None = None
    urllist: str | None = None
    expressionlist: str | None = None
    redirect: str | None = None
    rewrite: str | None = None  # name of a Rewrite
    restriction: Restriction | None = None
    log: LogSpec | None = None

    @property
    def has_content(self) -> bool:
        """False when squidGuard would set the dest inactive: pass lists skip it."""
        return bool(self.domainlist or self.urllist or self.expressionlist or self.redirect
                    or self.rewrite)


class PassItem(FrozenRecord):
    """One word of a ``pass`` list: a dest name, or all/any/none/in-addr."""

    word: str  # dest name, "all" (any is stored as "all"), "none", "in-addr", "dnsbl:…"
    negate: bool = False  # written with "!"


class AclBranch(Record):
    """The content of one ``{ … }`` in the acl block."""

    pos: Pos
    passes: list[PassItem] | None = None  # None: no pass line (inherit default's)
    redirect: str | None = None  # "default" means default's redirect
    rewrite: str | None = None  # rewrite name, or "none"
    log: LogSpec | None = None  # only honoured in default


class Acl(Record):
    """``NAME [within|outside TIME] { … } [else { … }]`` in the acl block."""

    source: str  # a Source name, or "default"
    branch: AclBranch
    restriction: Restriction | None = None
    other: AclBranch | None = None  # the else branch


class SharedConfig(FrozenRecord):
    """The ``shared …`` lines of a welcome block: first-visit state on Redis (docs/redis.md)."""

    urls: tuple[str, ...]  # one URL, or a cluster's seed nodes
    pos: Pos  # the shared line
    cluster: bool = False
    user: str | None = None  # ACL user (shared-user)
    password_file: str | None = None  # absolute path (shared-password-file)
    password_pos: Pos | None = None
    deadline: float = 0.05  # seconds a batch may wait for Redis
    fallback: str = "seen"  # "seen" or "local": what an unreachable Redis means
    shards: int = 1  # keys the filter is split into (the parser makes 16 the cluster default)
    prefix: str = "sgb:welcome"  # of every key name


class WelcomeConfig(FrozenRecord):
    """Our ``welcome { … }`` extension block (see docs/config.md)."""

    redirect: str
    pos: Pos
    key: str = "ip"  # "ip" or "user"
    capacity: int = 1_000_000
    error: float = 0.001
    state: str = ""  # absolute path; the parser fills in dbhome/welcome.bloom
    window: float | None = None  # seconds
    status: int = 302
    exempt_hosts: frozenset[str] = frozenset()  # lower-case host names, the redirect's own included
    log: LogSpec | None = None
    shared: SharedConfig | None = None  # the state lives on Redis, the state file caches it


class Config(Record):
    """A whole configuration, as read from ``path``."""

    path: str
    dbhome: str
    logdir: str
    times: dict[str, TimeSpec] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)  # file order matters
    dests: dict[str, Dest] = field(default_factory=dict)
    rewrites: dict[str, Rewrite] = field(default_factory=dict)
    acls: list[Acl] = field(default_factory=list)  # file order, default included
    welcome: WelcomeConfig | None = None
    emergency: str | None = None  # our "emergency pass|block URL" setting, as written
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def default_acl(self) -> Acl:
        """The ``default`` acl (the parser guarantees there is one)."""
        for acl in self.acls:
            if acl.source == "default":
                return acl
        raise LookupError("no default acl")  # pragma: no cover - parser refuses this

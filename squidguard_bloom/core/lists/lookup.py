"""In-memory lookups: domain suffixes, url prefixes, expressions.

* Domains: a host is listed when it, or any parent domain of it, is an
  entry (a real label-boundary suffix match; squidGuard's neighbour search
  in a B-tree misses ``www.badsite.com`` when ``badsite.com`` and
  ``zzz.badsite.com`` are both listed).  IP-address hosts match exactly.
* URLs: an entry matches when it is a string prefix of the request's surl
  or furl (no path boundary, as squidGuard: ``site.com/ads`` also blocks
  ``site.com/adsense``), among the entries of the same host.
* Expressions: POSIX extended regexes, case-insensitive, searched in furl,
  run by RE2 (linear time: no URL can make a lookup slow).
"""

from __future__ import annotations

from squidguard_bloom.core.ere import ere_to_re2
from squidguard_bloom.core.lists.errors import ListError
from squidguard_bloom.core.lists.text import domain_key, entries, expression_lines, url_key
from squidguard_bloom.core.rawtext import for_regex
from squidguard_bloom.core.urlnorm import Target
from squidguard_bloom.records import FrozenRecord

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:  # RE2 (and libstdc++) load only for a config with expressions
    import re2


class Match(FrozenRecord):
    """A list hit: the entry as stored, and its per-entry redirect if any."""

    entry: str
    redirect: str | None


def is_address(host: str) -> bool:
    """Whether a host is an IP address (matched exactly, never by parent domains)."""
    return bool(host) and (host[-1].isdigit() or ":" in host)


class DomainList:
    """Entries of a ``domainlist`` file, held in a dict."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self._d: dict[str, str | None] = {}
        for _n, raw, redirect in entries(text):
            key = domain_key(raw)
            if key:
                self._d[key] = redirect

    def __len__(self) -> int:
        return len(self._d)

    def lookup(self, host: str) -> Match | None:
        """The entry listing host or one of its parent domains."""
        d = self._d
        if is_address(host):
            return Match(host, d[host]) if host in d else None
        h = host
        while True:
            if h in d:
                return Match(h, d[h])
            i = h.find(".")
            if i < 0:
                return None
            h = h[i + 1 :]


class UrlList:
    """Entries of a ``urllist`` file, grouped by their host part."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        by_host: dict[str, dict[str, str | None]] = {}
        for _n, raw, redirect in entries(text):
            key = url_key(raw)
            if key:
                by_host.setdefault(key.split("/", 1)[0], {})[key] = redirect
        self._d = {h: tuple(sorted(e.items())) for h, e in by_host.items()}

    def __len__(self) -> int:
        return sum(len(v) for v in self._d.values())

    def lookup(self, target: Target) -> Match | None:
        """The entry that is a prefix of the request's surl, else furl, else wurl."""
        for s in (target.surl, target.furl, target.wurl):
            if not s:
                continue
            group = self._d.get(s.split("/", 1)[0])
            if group:
                for entry, redirect in group:
                    if s.startswith(entry):
                        return Match(entry, redirect)
        return None


class ExpressionList:
    """The patterns of an ``expressionlist`` file, searched in furl."""

    def __init__(self, path: str, text: str) -> None:
        import re2  # noqa: PLC0415 - see TYPE_CHECKING above

        self.path = path
        opts = re2.Options()
        opts.case_sensitive = False
        self._patterns: list[tuple[str, re2._Regexp]] = []
        for number, pattern in expression_lines(text):
            try:
                regex = re2.compile(for_regex(ere_to_re2(pattern)), opts)
            except re2.error as exc:
                msg = (f"{path}:{number}: invalid regular expression {pattern!r} ({exc}); "
                       "fix or delete that line (squidGuard would crash on it)")
                raise ListError(msg) from exc
            self._patterns.append((pattern, regex))
        self._any: re2._Regexp | None = None
        if len(self._patterns) > 1:
            joined = "|".join(f"(?:{for_regex(ere_to_re2(p))})" for p, _ in self._patterns)
            try:
                self._any = re2.compile(joined, opts)
            except re2.error:  # too big for one automaton: try them one by one
                self._any = None
        self._unanchored = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
        self._raw = getattr(self._any, "_regexp", None) if self._unanchored is not None else None

    def __len__(self) -> int:
        return len(self._patterns)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The patterns as written, in file order."""
        return tuple(p for p, _ in self._patterns)

    def lookup(self, furl: str) -> Match | None:
        """The first pattern (file order) found in furl."""
        furl = for_regex(furl)  # bytes that are not UTF-8: one character each (see rawtext)
        if self._raw is not None:
            # The RE2 object under google-re2's wrapper: half the cost of .search().
            data = furl.encode("utf-8")
            if self._raw.Match(self._unanchored, data, 0, len(data))[0][0] < 0:
                return None
        elif self._any is not None and self._any.search(furl) is None:
            return None
        for pattern, regex in self._patterns:
            if regex.search(furl) is not None:
                return Match(pattern, None)
        return None

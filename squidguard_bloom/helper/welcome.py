"""The first-visit rule: has this client been welcomed yet?

One shared, memory-mapped Bloom filter (``state`` file) remembers welcomed
clients for every helper child and across restarts.  With a ``window`` the
filter is split into generations of that length (``STATE.<n>`` files,
n = floor(unix time / window)): a client is known while it is in the current
or the previous generation, so it is welcomed again between one and two
windows after its last welcome.  Generations older than that are deleted by
whichever child first moves on.

The whole rule lives here: which requests may be welcomed
(:meth:`Welcome.welcomes`: GET and HEAD, never an exempt host such as the
welcome page's own), the key of a client (address or user), the
generations, and the redirect.  Per request that is one address parse and
one C call (two with a window); the C fast path does the same for the
lines it answers, from these settings.
"""

from __future__ import annotations

import contextlib
import os
import re

from squidguard_bloom.core.engine.template import TemplateValues, expand, split_status
from squidguard_bloom.core.keys import address_key, user_key
from squidguard_bloom.core.urlnorm import parse_target
from squidguard_bloom.native.bloom import BloomFilter
from squidguard_bloom.records import FrozenRecord

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from squidguard_bloom.core.config.model import WelcomeConfig

#: Methods a browser follows a redirect for (CONNECT shows nothing; POST would lose its body).
WELCOME_METHODS = frozenset({"GET", "HEAD"})


def _directory(path: str) -> str:
    """The directory a file path is in ("." for a bare name)."""
    return os.path.dirname(path) or "."


class WelcomeSettings(FrozenRecord):
    """The ``welcome { … }`` block of the configuration."""

    redirect: str  # template, squidGuard % codes; "302:" style prefix optional
    key: str = "ip"  # "ip" or "user" (user when known, else ip)
    capacity: int = 1_000_000
    error: float = 0.001
    state: str = "/var/lib/squidguard-bloom/welcome.bloom"
    window: float | None = None  # seconds; None = welcome once, ever
    status: int = 302
    exempt_hosts: frozenset[str] = frozenset()  # never welcomed (portal, block pages)

    @classmethod
    def from_config(cls, block: WelcomeConfig, dbhome: str,
                    state: str | None = None) -> WelcomeSettings:
        """The settings of a ``welcome`` block: the welcome page's own host is exempt too,
        and the state file defaults to dbhome/welcome.bloom (state: another one)."""
        exempt = set(block.exempt_hosts)
        _status, url = split_status(block.redirect)
        own = parse_target(url.split("%", 1)[0])
        if own is not None:
            exempt.add(own.host)
        return cls(redirect=block.redirect, key=block.key, capacity=block.capacity,
                   error=block.error,
                   state=state or block.state or os.path.join(dbhome, "welcome.bloom"),
                   window=block.window, status=block.status, exempt_hosts=frozenset(exempt))


class Welcome:
    """Decides first visits against the shared filter."""

    def __init__(self, settings: WelcomeSettings) -> None:
        self.settings = settings
        self._by_user = settings.key == "user"
        self._window = settings.window
        self._generation = -1
        self._current: BloomFilter | None = None
        self._previous: BloomFilter | None = None
        os.makedirs(_directory(settings.state), exist_ok=True)
        if self._window is None:
            self._current = self._open(settings.state)

    def _open(self, path: str) -> BloomFilter:
        return BloomFilter(self.settings.capacity, self.settings.error, path)

    def _roll(self, now: float) -> None:
        """Switch to the generation of now (window mode)."""
        assert self._window is not None
        gen = int(now // self._window)
        if gen == self._generation:
            return
        base = self.settings.state
        old = [self._current, self._previous]
        self._current = self._open(f"{base}.{gen}")
        self._previous = self._open(f"{base}.{gen - 1}")
        self._generation = gen
        for f in old:
            if f is not None:
                f.close()
        self._prune(gen)

    def _prune(self, gen: int) -> None:
        pattern = re.compile(re.escape(os.path.basename(self.settings.state)) + r"\.(-?\d+)$")
        for entry in os.scandir(_directory(self.settings.state)):
            m = pattern.match(entry.name)
            if m and int(m.group(1)) < gen - 1:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def key_for(self, client: str, user: str) -> bytes | None:
        """The filter key of a client, or None when it has no usable identity."""
        if self._by_user and user:
            return user_key(user)
        try:
            return address_key(client)
        except ValueError:
            return None

    #: The filter decides by itself.  A state shared elsewhere (SharedWelcome, on Redis)
    #: does not: the fast path then only checks this filter, its cache, and the loop asks
    #: first_visits about all the candidates of a batch at once.
    decides = True

    def welcomes(self, method: str, host: str, client: str, user: str, now: float, *,
                 added: bool = False) -> bool:
        """Whether this request gets the welcome page: a GET or HEAD, to a host that is not
        exempt, by a client on its first visit (recorded now; added: already recorded, by
        the fast path)."""
        if method.upper() not in WELCOME_METHODS or host in self.settings.exempt_hosts:
            return False
        return added or self.first_visit(client, user, now)

    def candidate(self, method: str, host: str, client: str, user: str) -> bytes | None:
        """The key of a request that gets the welcome page if it is a first visit (a GET or
        HEAD, to a host that is not exempt, by a client with an identity), else None."""
        if method.upper() not in WELCOME_METHODS or host in self.settings.exempt_hosts:
            return None
        return self.key_for(client, user)

    def redirect(self, values: TemplateValues) -> tuple[int, str]:
        """(status, URL) of the welcome redirect for a request with these values."""
        status, url = expand(self.settings.redirect, values)
        return status or self.settings.status, url

    def first_visit(self, client: str, user: str, now: float) -> bool:
        """Record the client; True if this is its first (welcome-worthy) visit."""
        key = self.key_for(client, user)
        return key is not None and self.first_visit_key(key, now)

    def first_visits(self, keys: list[bytes], now: float) -> list[bool]:
        """first_visit_key of each key, in order (a repeated key is new once at most)."""
        return [self.first_visit_key(key, now) for key in keys]

    def first_visit_key(self, key: bytes, now: float) -> bool:
        """Record a filter key (see key_for); True if it was not known."""
        if self._window is not None:
            self._roll(now)
            assert self._previous is not None
            if key in self._previous:
                return False
        assert self._current is not None
        return self._current.add(key)

    @property
    def by_user(self) -> bool:
        """Keyed by the user name when the request has one."""
        return self._by_user

    def filters(self, now: float) -> tuple[BloomFilter, BloomFilter | None]:
        """The filter first_visit adds to at now, and the one it checks first (window mode).

        For the fast path, which does first_visit's work in C for a whole batch.
        """
        if self._window is not None:
            self._roll(now)
        assert self._current is not None
        return self._current, self._previous

    def describe(self) -> str:
        """One line for the startup log."""
        window = self._window
        if self._current is None:
            assert window is not None  # no filter open yet: only in window mode
            return (f"welcome filter in generations of {_span(window)} (a client is "
                    f"welcomed again after {_span(window)} to {_span(2 * window)}) "
                    f"at {self.settings.state}.N")
        return self._current.info().describe()

    def close(self) -> None:
        """Unmap the filter files (their content stays on disk)."""
        for f in (self._current, self._previous):
            if f is not None:
                f.close()
        self._current = self._previous = None


def _span(seconds: float) -> str:
    """A window as the config would spell it: 30d, 12h, 90m or 45s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"

"""The connections to Redis: set-up checks, one pipeline per batch under a deadline,
and reconnecting in the background with capped, jittered back-off.

This is the one module that imports redis-py.  It uses redis-py to connect
(URLs, TLS, unix sockets, AUTH, cluster topology) and hands the hot path
plain connections to which it writes a batch's commands as one block of
RESP bytes and from which it reads the replies.

States: ``up`` (batches go to Redis), ``down`` (unreachable, or a batch
missed its deadline: batches do not wait, a thread reconnects) and
``misconfigured`` (wrong password, not a Redis, cluster or not as
expected, a filter of other parameters: one error naming the setting, then
retried at the longest back-off in case the server side is fixed).  Each
change of state is reported once through ``say``.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable

import redis
from redis import exceptions as rexc
from redis.backoff import NoBackoff
from redis.retry import Retry

from squidguard_bloom.helper.sharedwelcome.layout import WINDOW_SCRIPT, Layout, command
from squidguard_bloom.helper.sharedwelcome.settings import SharedSettings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

UP, DOWN, MISCONFIGURED, CONNECTING = "up", "down", "misconfigured", "connecting"
BACKOFF_FIRST = 0.1  # seconds before the first retry
BACKOFF_CAP = 30.0  # longest wait between two attempts


#: Seconds a thread waits for the replies of a batch that missed its deadline.
LATE_LIMIT = 30.0


class Late(rexc.TimeoutError):
    """A batch's replies missed the deadline; replies holds those read so far, per node."""

    def __init__(self, message: str, replies: dict[int, list[Any]]) -> None:
        super().__init__(message)
        self.replies = replies


class Misconfigured(Exception):
    """A problem that retrying will not fix: the message names the setting."""


class Empty(Exception):
    """Redis holds no marker for a shard we had seen marked: it came back empty."""


class _Route:
    """A live set of connections: one per node, and which node holds each shard."""

    __slots__ = ("conns", "node_of", "names", "broken", "owners")

    def __init__(self, conns: list[Any], node_of: list[int], names: list[str],
                 owners: list[Any]) -> None:
        self.conns = conns
        self.node_of = node_of
        self.names = names
        self.broken = False
        # The redis-py clients the connections came from: a client that is garbage
        # collected closes its pool, and redis-py would then reconnect silently (unchecked,
        # and for TLS with a handshake inside a batch's deadline).
        self.owners = owners

    def close(self) -> None:
        self.broken = True
        for c in self.conns:
            with contextlib.suppress(Exception):  # a broken socket: nothing to report
                c.disconnect()


def backoff(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before attempt n (0, 1, ...): doubling from 0.1 s, capped
    at 30 s, each drawn from [50 %, 100 %] of that (jitter spreads proxies)."""
    base = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(attempt, 20))
    return base * (0.5 + 0.5 * rng.random())


class Link:
    """The shared filter's connection(s), for one helper process."""

    def __init__(self, settings: SharedSettings, layout: Layout, say: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.layout = layout
        self._say = say
        self._clock = clock
        self._route: _Route | None = None
        self.state = CONNECTING
        self.detail = ""
        self.sha = b""
        self.since = clock()
        self._marked: set[int] = set()  # shards whose marker we have seen
        self._prepared: set[tuple[int, int]] = set()  # (shard, gen) sized and given an expiry
        self._wake = threading.Event()
        self._first = threading.Event()  # set once the first attempt has ended
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rng = random.Random()
        #: Called (in the thread) with a pipeline runner on every new connection, before
        #: batches use it: the owner replays what it decided while Redis was away.
        self.on_up: Callable[[Callable[[dict[int, list[bytes]], int],
                                        dict[int, list[Any]] | None]], None] | None = None
        self.empty_events = 0  # times Redis was found empty after having held our markers

    # -- state -------------------------------------------------------------------------

    def _set_state(self, state: str, detail: str) -> None:
        """Change state and report it, once per change."""
        with self._lock:
            same = state == self.state and (state != MISCONFIGURED or detail == self.detail)
            old, self.state, self.detail = self.state, state, detail
            if same:  # e.g. refused after reset: still down, nothing new to say
                return
            lasted, self.since = self._clock() - self.since, self._clock()
        target = self.settings.about("shared")
        if state == UP:
            again = "" if old == CONNECTING else f" again after {lasted:.1f}s"
            self._say(f"welcome shared: Redis reachable{again} ({detail})")
        elif state == DOWN:
            what = ("no welcome" if self.settings.fallback == "seen"
                    else "this proxy's own outage filter decides")
            self._say(f"welcome shared: Redis unreachable ({detail}); until it is back: {what}, "
                      f"and no local bit is set for a client Redis has not confirmed; "
                      f"retrying with back-off up to {BACKOFF_CAP:g}s [{target}]")
        else:
            self._say(f"welcome shared: ERROR: {detail}; no welcome until this is fixed "
                      f"(retrying every {BACKOFF_CAP:g}s)")

    # -- connecting ----------------------------------------------------------------------

    def start(self, wait: float) -> None:
        """Connect and keep the link up in a background thread; wait at most `wait`
        seconds for the first attempt (a helper starting or reloading holds Squid's
        requests no longer than a batch's deadline: until then they get the fallback)."""
        self._thread = threading.Thread(target=self._keep_up, name="sgb-redis", daemon=True)
        self._thread.start()
        self.settle(wait)

    def settle(self, wait: float) -> bool:
        """Wait up to `wait` seconds for the first connection attempt; whether it ended."""
        return self._first.wait(wait)

    def _attempt(self) -> bool:
        try:
            route = self._connect()
        except Misconfigured as exc:
            self._set_state(MISCONFIGURED, str(exc))
            return False
        except Empty as exc:
            self.empty_events += 1
            self._say(f"welcome shared: WARNING: {exc}")
            return self._attempt_after_empty()
        except (rexc.RedisError, OSError) as exc:
            self._set_state(DOWN, _short(exc))
            return False
        except Exception as exc:  # the reconnecting thread must not die of it
            self._set_state(DOWN, f"unexpected {_short(exc)}")
            return False
        self._publish(route)
        return True

    def _attempt_after_empty(self) -> bool:
        self._marked.clear()
        return self._attempt()

    def _publish(self, route: _Route) -> None:
        if self.on_up is not None:
            def run(per_shard: dict[int, list[bytes]], gen: int) -> dict[int, list[Any]] | None:
                return self._pipeline_on(route, per_shard, gen)

            self.on_up(run)
            if route.broken:
                return
        with self._lock:
            old, self._route = self._route, route
        if old is not None:
            old.close()
        names = ", ".join(route.names)
        self._set_state(UP, f"{len(route.conns)} node(s): {names}")

    def _keep_up(self) -> None:
        self._attempt()
        self._first.set()
        attempt = 0
        while not self._stop.is_set():
            if self.state == UP:
                attempt = 0
                self._wake.wait()
                self._wake.clear()
                continue
            wait = BACKOFF_CAP if self.state == MISCONFIGURED else backoff(attempt, self._rng)
            if self._stop.wait(wait):
                return
            attempt += 1
            self._attempt()

    def close(self) -> None:
        """Stop the thread and close the connections."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            route, self._route = self._route, None
        if route is not None:
            route.close()

    def _client_kwargs(self) -> dict[str, Any]:
        s = self.settings
        # No retries inside redis-py: this link decides when to try again.
        kw: dict[str, Any] = {"socket_timeout": s.connect_timeout,
                              "socket_connect_timeout": s.connect_timeout,
                              "protocol": 2, "retry": Retry(NoBackoff(), 0)}
        if s.user is not None:
            kw["username"] = s.user
        if s.password is not None:
            kw["password"] = s.password
        return kw

    def _connect(self) -> _Route:
        """New connections, checked: the right kind of server, our filter's markers,
        the window script loaded.  Raises Misconfigured, Empty or a Redis error."""
        s = self.settings
        clients: list[Any] = []
        names: list[str] = []
        node_of: list[int] = []
        owners: list[Any] = []
        try:
            if s.cluster:
                cluster = self._cluster()
                owners.append(cluster)
                by_name: dict[str, int] = {}
                for shard in range(self.layout.shards):
                    node = cluster.get_node_from_key(self.layout.marker_key(shard))
                    if node.name not in by_name:
                        by_name[node.name] = len(clients)
                        clients.append(node.redis_connection)
                        names.append(node.name)
                    node_of.append(by_name[node.name])
            else:
                client = self._standalone()
                clients.append(client)
                names.append(s.urls[0].split("@")[-1])
                node_of = [0] * self.layout.shards
            conns = []
            for client in clients:
                conn = client.connection_pool.get_connection()
                conn.connect()
                conns.append(conn)
        except rexc.AuthenticationError as exc:
            raise Misconfigured(self._auth_problem(exc)) from exc
        except rexc.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc) or "NOPERM" in str(exc):
                raise Misconfigured(self._auth_problem(exc)) from exc
            raise Misconfigured(f"{s.about('shared')}: the server answered {_short(exc)}; "
                                f"is it Redis or Valkey 7 or later?") from exc
        except rexc.InvalidResponse as exc:
            raise Misconfigured(self._not_redis(exc)) from exc
        except rexc.RedisClusterException as exc:
            raise Misconfigured(f"{s.about('shared')}: {exc}; if this is one standalone "
                                f"server, write shared URL without 'cluster'") from exc
        route = _Route(conns, node_of, names, owners + clients)
        try:
            self._check_route(route)
        except BaseException:
            route.close()
            raise
        return route

    def _auth_problem(self, exc: BaseException) -> str:
        s = self.settings
        who = f"user {s.user!r}" if s.user else "the default user"
        where = (s.about("shared-password-file") if s.password is not None
                 else "no shared-password-file line")
        return (f"{s.about('shared')}: the server refused to let {who} in ({_short(exc)}); "
                f"check the password ({where}) and shared-user")

    def _not_redis(self, exc: BaseException) -> str:
        return (f"{self.settings.about('shared')}: what answers there does not speak the "
                f"Redis protocol ({_short(exc)}); check the host and port")

    def _standalone(self) -> Any:
        s = self.settings
        try:
            client = redis.Redis.from_url(s.urls[0], **self._client_kwargs())
            info = client.info("server")
        except rexc.AuthenticationError:
            raise
        except rexc.InvalidResponse:
            raise
        except ValueError as exc:
            raise Misconfigured(f"{s.about('shared')}: {exc}") from exc
        version = str(info.get("redis_version", info.get("valkey_version", "0")))
        if int(version.split(".", maxsplit=1)[0]) < 7:
            raise Misconfigured(f"{s.about('shared')}: Redis {version} there; the shared "
                                f"welcome needs Redis or Valkey 7.0 or later (EXPIRE NX, "
                                f"BITFIELD_RO)")
        cluster = client.info("cluster")
        if cluster.get("cluster_enabled"):
            raise Misconfigured(f"{s.about('shared')}: that server is a node of a Redis "
                                f"Cluster; write 'shared cluster' and the cluster's nodes "
                                f"(redis://HOST:PORT ...)")
        return client

    def _cluster(self) -> Any:
        from urllib.parse import parse_qsl, urlsplit  # noqa: PLC0415

        from redis.cluster import ClusterNode, RedisCluster  # noqa: PLC0415

        s = self.settings
        nodes = []
        kw = self._client_kwargs()
        for url in s.urls:
            parts = urlsplit(url)
            try:
                nodes.append(ClusterNode(parts.hostname or "", parts.port or 6379))
            except ValueError as exc:
                raise Misconfigured(f"{s.about('shared')}: {url!r}: {exc}") from exc
            if parts.scheme.lower() == "rediss":
                kw["ssl"] = True
            # TLS settings as redis-py reads them from a URL (ssl_ca_certs=...)
            kw.update((k, v) for k, v in parse_qsl(parts.query) if k.startswith("ssl_"))
        try:
            return RedisCluster(startup_nodes=nodes, **kw)
        except rexc.RedisClusterException as exc:
            text = str(exc)
            if "ERR This instance has cluster support disabled" in text or \
                    "Cluster mode is not enabled" in text:
                raise Misconfigured(f"{s.about('shared')}: that server is a standalone Redis, "
                                    f"not a cluster node; write shared URL without "
                                    f"'cluster'") from exc
            if "AUTH" in text or "WRONGPASS" in text or "invalid username" in text:
                raise Misconfigured(self._auth_problem(exc)) from exc
            raise rexc.ConnectionError(text) from exc

    def _setup_trip(self, route: _Route, per_node: dict[int, list[bytes]]) \
            -> dict[int, list[Any]]:
        """A round trip of the set-up; an error reply is a misconfiguration."""
        got = self._round_trip(route, per_node, self.settings.connect_timeout)
        for replies in got.values():
            for r in replies:
                if isinstance(r, rexc.ResponseError):
                    user = f"user {self.settings.user!r}" if self.settings.user else "the user"
                    raise Misconfigured(
                        f"{self.settings.about('shared')}: the server refused a command "
                        f"({_short(r)}); {user} needs the commands and the keys "
                        f"{self.layout.prefix}:* of docs/redis.md (ACL)")
        return got

    def _check_route(self, route: _Route) -> None:
        """Markers (set when missing, compared when present) and the window script."""
        lay = self.layout
        replies = self._setup_trip(route, {n: [command("SCRIPT", "LOAD", WINDOW_SCRIPT)]
                                           for n in range(len(route.conns))})
        self.sha = str(replies[0][0]).encode() if not isinstance(replies[0][0], bytes) \
            else replies[0][0]
        ask = {n: [] for n in range(len(route.conns))}  # type: dict[int, list[bytes]]
        for shard in range(lay.shards):
            ask[route.node_of[shard]].append(command("GET", lay.marker_key(shard)))
        got = self._setup_trip(route, ask)
        missing = []
        seen_before = []
        index = {n: 0 for n in got}
        for shard in range(lay.shards):
            n = route.node_of[shard]
            value = got[n][index[n]]
            index[n] += 1
            if value is None:
                missing.append(shard)
                if shard in self._marked:
                    seen_before.append(shard)
            elif value != lay.marker_value:
                raise Misconfigured(
                    f"{self.settings.about('shared')}: its key {lay.marker_key(shard).decode()} "
                    f"says another filter is stored there ({value.decode(errors='replace')}), "
                    f"this config asks for ({lay.marker_value.decode()}); give every proxy the "
                    f"same capacity, error, window and shared-shards, or another shared-prefix")
        if missing:
            put = {n: [] for n in range(len(route.conns))}  # type: dict[int, list[bytes]]
            for shard in missing:
                put[route.node_of[shard]].append(
                    command("SET", lay.marker_key(shard), lay.marker_value, "NX"))
            self._setup_trip(route, put)
        self._prepared.clear()
        marked_now = set(range(lay.shards))
        if seen_before:
            self._marked = marked_now
            raise Empty(f"Redis came back without the welcome state of {len(seen_before)} of "
                        f"{lay.shards} shard(s) (marker keys gone: restarted without "
                        f"persistence, flushed, or a failover lost writes): clients that no "
                        f"proxy's local filter knows will be welcomed again; see docs/redis.md "
                        f"on persistence [{self.settings.about('shared')}]")
        self._marked = marked_now

    # -- batches ---------------------------------------------------------------------------

    def _round_trip(self, route: _Route, per_node: dict[int, list[bytes]], budget: float,
                    failed: dict[int, BaseException] | None = None) -> dict[int, list[Any]]:
        """Send each node its commands as one write, read every reply; raise on a miss
        (Late when the replies are merely slow: it holds those read so far).

        failed: collect a node's connection error there (its replies left out) instead of
        raising, so that the other nodes' replies still count (a cluster master down).
        """
        end = time.monotonic() + budget
        for n, cmds in per_node.items():
            try:
                route.conns[n].send_packed_command([b"".join(cmds)], check_health=False)
            except (rexc.ConnectionError, OSError) as exc:
                if failed is None:
                    raise
                failed[n] = exc
        out: dict[int, list[Any]] = {n: [] for n in per_node if failed is None or n not in failed}
        for n, replies in out.items():
            conn = route.conns[n]
            cmds = per_node[n]
            try:
                while len(replies) < len(cmds):
                    left = end - time.monotonic()
                    try:
                        if left <= 0:
                            raise rexc.TimeoutError("deadline")
                        # A buffered reply costs no system call; the timeout bounds each recv.
                        replies.append(conn.read_response(timeout=left,
                                                          disconnect_on_error=False))
                    except rexc.ResponseError as exc:  # a reply, in sequence: keep reading
                        replies.append(exc)
                    except rexc.TimeoutError as exc:  # slow: the connection stays in step
                        raise Late(f"no reply within {budget * 1000:g} ms", out) from exc
            except (rexc.ConnectionError, OSError) as exc:
                if failed is None:
                    raise
                failed[n] = exc
        if failed:
            for n in failed:
                out.pop(n, None)
        return out

    def pipeline(self, per_shard: dict[int, list[bytes]], gen: int,
                 late: Callable[[dict[int, list[Any]]], None] | None = None) \
            -> dict[int, list[Any]] | None:
        """Run each shard's commands (one pipeline per node, all nodes at once) within
        the deadline; the replies per shard, or None when Redis is down or missed it
        (the link then goes down and the thread reconnects).  A shard whose node failed
        or answered an error is left out of the replies (the link goes down too).

        late: when the deadline passes with Redis connected but slow, a thread keeps
        reading (up to LATE_LIMIT seconds) and hands the replies, per shard, to late:
        Redis applied the commands, and the caller learns what they found.
        """
        route = self._route
        if route is None:
            return None
        return self._pipeline_on(route, per_shard, gen, late)

    def _pipeline_on(self, route: _Route, per_shard: dict[int, list[bytes]], gen: int,
                     late: Callable[[dict[int, list[Any]]], None] | None = None) \
            -> dict[int, list[Any]] | None:
        per_node: dict[int, list[bytes]] = {}
        order: dict[int, list[tuple[int, int, int]]] = {}  # node -> (shard, head, count)
        for shard, cmds in per_shard.items():
            n = route.node_of[shard]
            head: list[bytes] = []
            if (shard, gen) not in self._prepared:
                head = self.layout.prepare(shard, gen)
            per_node.setdefault(n, []).extend(head + cmds)
            order.setdefault(n, []).append((shard, len(head), len(cmds)))
        failed: dict[int, BaseException] = {}
        try:
            got = self._round_trip(route, per_node, self.settings.deadline, failed)
        except Late as exc:
            self._fail(route, _short(exc), close=late is None)
            if late is not None:
                self._drain(route, per_node, exc.replies, order, late)
            return None
        except (rexc.RedisError, OSError) as exc:
            self._fail(route, _short(exc))
            return None
        result = self._per_shard(got, order, gen)
        problem = next((_short(e) for e in failed.values()), None)
        for shard, replies in list(result.items()):
            error = next((r for r in replies if isinstance(r, rexc.ResponseError)), None)
            if error is not None:  # MOVED, CLUSTERDOWN, NOSCRIPT, OOM...: that shard failed
                del result[shard]
                problem = problem or _short(error)
        if problem is not None:  # the shards that answered count; reconnect for the others
            self._fail(route, problem)
        return result

    def _per_shard(self, got: dict[int, list[Any]],
                   order: dict[int, list[tuple[int, int, int]]],
                   gen: int | None) -> dict[int, list[Any]]:
        result: dict[int, list[Any]] = {}
        for n, items in order.items():
            if n not in got:
                continue
            pos = 0
            for shard, nhead, ncmds in items:
                if nhead and gen is not None:
                    self._prepared.add((shard, gen))
                result[shard] = got[n][pos + nhead : pos + nhead + ncmds]
                pos += nhead + ncmds
        return result

    def _drain(self, route: _Route, per_node: dict[int, list[bytes]], got: dict[int, list[Any]],
               order: dict[int, list[tuple[int, int, int]]],
               late: Callable[[dict[int, list[Any]]], None]) -> None:
        """Read the rest of a late batch's replies in a thread, then close the route."""
        def run() -> None:
            try:
                end = time.monotonic() + LATE_LIMIT
                for n, cmds in per_node.items():
                    conn = route.conns[n]
                    while len(got[n]) < len(cmds):
                        left = end - time.monotonic()
                        if left <= 0:
                            return
                        try:
                            got[n].append(conn.read_response(timeout=left,
                                                             disconnect_on_error=False))
                        except rexc.ResponseError as exc:
                            got[n].append(exc)
                late(self._per_shard(got, order, None))
            except (rexc.RedisError, OSError):
                return
            finally:
                route.close()

        threading.Thread(target=run, name="sgb-redis-late", daemon=True).start()

    def _fail(self, route: _Route, why: str, *, close: bool = True) -> None:
        with self._lock:
            if self._route is route:
                self._route = None
        if close:
            route.close()
        self._set_state(DOWN, why)
        self._wake.set()

    @property
    def up(self) -> bool:
        """Batches go to Redis."""
        return self._route is not None

    def bitcounts(self, gen: int) -> list[int] | None:
        """BITCOUNT of every shard's key of generation gen (for --check), or None."""
        route = self._route
        if route is None:
            return None
        per_node: dict[int, list[bytes]] = {}
        for shard in range(self.layout.shards):
            per_node.setdefault(route.node_of[shard], []).append(
                command("BITCOUNT", self.layout.bits_key(shard, gen)))
        try:
            got = self._round_trip(route, per_node, self.settings.connect_timeout)
        except (rexc.RedisError, OSError) as exc:
            self._fail(route, _short(exc))
            return None
        index = dict.fromkeys(got, 0)
        counts = []
        for shard in range(self.layout.shards):
            n = route.node_of[shard]
            counts.append(int(got[n][index[n]]))
            index[n] += 1
        return counts


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]

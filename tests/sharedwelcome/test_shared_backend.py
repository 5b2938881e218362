"""SharedWelcome in this process against real servers: windows on an injected clock,
a real three-master cluster, misconfigurations, the local fallback."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from squidguard_bloom.errors import BloomError
from squidguard_bloom.helper.sharedwelcome.layout import key_slot
from squidguard_bloom.helper.sharedwelcome.link import (
    BACKOFF_CAP,
    CONNECTING,
    DOWN,
    MISCONFIGURED,
    UP,
    backoff,
)
from squidguard_bloom.helper.sharedwelcome.settings import SharedSettings
from squidguard_bloom.helper.sharedwelcome.welcome import SharedWelcome
from squidguard_bloom.helper.welcome import WelcomeSettings
from squidguard_bloom.native.bloom import BloomFilter

from .servers import RedisCluster, RedisServer, free_port

KEYS = [b"client-%d" % i for i in range(500)]


class Proxy:
    """One proxy's SharedWelcome (its own local state) and what it logged."""

    def __init__(self, root: Path, name: str, shared: SharedSettings,
                 window: float | None = None) -> None:
        self.log: list[str] = []
        settings = WelcomeSettings(redirect="http://portal.example/",
                                   state=str(root / name / "welcome.bloom"), capacity=10_000,
                                   error=0.001, window=window)
        self.welcome = SharedWelcome(settings, shared, self.log.append)
        self.welcome.settle(10)  # the first connection attempt has ended (a helper waits less)

    def new(self, keys: list[bytes], now: float) -> set[bytes]:
        return {k for k, fresh in zip(keys, self.welcome.first_visits(keys, now), strict=True)
                if fresh}


@pytest.fixture
def proxies(tmp_path: Path) -> Iterator[list[Proxy]]:
    made: list[Proxy] = []
    yield made
    for p in made:
        p.welcome.close()


def test_window_welcomes_again_one_to_two_windows_later(tmp_path: Path, proxies: list[Proxy],
                                                        redis_server: RedisServer) -> None:
    """The local window's semantics, on Redis, with the clock injected (10 min windows)."""
    shared = SharedSettings(urls=(redis_server.url,))
    a, b = Proxy(tmp_path, "a", shared, 600), Proxy(tmp_path, "b", shared, 600)
    proxies += [a, b]
    t0 = 600 * 1000.0  # start of generation 1000
    keys = KEYS[:100]
    assert a.new(keys[:60], t0) | b.new(keys, t0 + 1) == set(keys)
    assert a.new(keys[:60], t0 + 2) == set()
    assert b.new(keys[:60], t0 + 2) == set()  # b asked Redis: known there
    # Generation 1001: known from the previous one, nothing written to 1001.
    assert a.new(keys, t0 + 650) == set() and b.new(keys, t0 + 700) == set()
    gen_1001 = f"sgb:welcome:{{{a.welcome.layout.tags[0]}}}:1001"
    assert redis_server.cli("EXISTS", gen_1001) == "1"  # sized at the roll, all zero
    assert redis_server.cli("BITCOUNT", gen_1001) == "0"
    # Generation 1002: welcomed again, once over both proxies.
    assert a.new(keys[:30], t0 + 1250) | b.new(keys, t0 + 1251) == set(keys)
    assert a.new(keys, t0 + 1252) == set()
    ttl = int(redis_server.cli("TTL", f"sgb:welcome:{{{a.welcome.layout.tags[0]}}}:1002"))
    assert 0 < ttl <= a.welcome.layout.ttl() == 1261


def test_three_master_cluster(tmp_path: Path, proxies: list[Proxy],
                              redis_cluster: RedisCluster) -> None:
    """16 shard keys spread over the 3 masters; one welcome per key across two proxies."""
    shared = SharedSettings(urls=tuple(redis_cluster.urls), cluster=True, shards=16,
                            prefix="cl")
    a, b = Proxy(tmp_path, "a", shared), Proxy(tmp_path, "b", shared)
    proxies += [a, b]
    assert a.welcome.link.state == UP and b.welcome.link.state == UP
    assert a.welcome.link.detail.startswith("3 node(s): ")
    tags = a.welcome.layout.tags
    assert [key_slot(f"{{{t}}}".encode()) * 16 // 16384 for t in tags] == list(range(16))
    got_a: set[bytes] = set()
    got_b: set[bytes] = set()
    done = threading.Barrier(2)

    def run(p: Proxy, keys: list[bytes], out: set[bytes]) -> None:
        done.wait()
        for i in range(0, len(keys), 50):
            out |= p.new(keys[i : i + 50], 1000.0)

    threads = [threading.Thread(target=run, args=(a, KEYS, got_a)),
               threading.Thread(target=run, args=(b, KEYS[::-1], got_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert got_a | got_b == set(KEYS) and not got_a & got_b
    sizes = [int(node.cli("DBSIZE")) for node in redis_cluster.nodes]
    assert sum(sizes) == 32 and min(sizes) >= 6  # 16 bits keys + 16 markers, spread


def test_cluster_node_named_as_a_standalone_server_is_refused(
        tmp_path: Path, proxies: list[Proxy], redis_cluster: RedisCluster) -> None:
    shared = SharedSettings(urls=(redis_cluster.urls[0] + "/0",),
                            where={"shared": "sg.conf:9: welcome shared X"})
    p = Proxy(tmp_path, "a", shared)
    proxies.append(p)
    assert p.welcome.link.state == MISCONFIGURED
    assert p.log == ["welcome shared: ERROR: sg.conf:9: welcome shared X: that server is a "
                     "node of a Redis Cluster; write 'shared cluster' and the cluster's nodes "
                     "(redis://HOST:PORT ...); no welcome until this is fixed (retrying every "
                     "30s)"]
    assert p.new(KEYS[:5], 1.0) == set()
    assert not p.welcome.healthy


def test_standalone_server_named_as_a_cluster_is_refused(tmp_path: Path, proxies: list[Proxy],
                                                         redis_server: RedisServer) -> None:
    shared = SharedSettings(urls=(redis_server.url,), cluster=True,
                            where={"shared": "sg.conf:9: welcome shared cluster X"})
    p = Proxy(tmp_path, "a", shared)
    proxies.append(p)
    assert p.welcome.link.state == MISCONFIGURED
    assert p.welcome.link.detail.startswith(
        "sg.conf:9: welcome shared cluster X: that server is a standalone Redis, not a "
        "cluster node; write shared URL without 'cluster'")


def test_wrong_password_names_the_password_file(tmp_path: Path, proxies: list[Proxy]) -> None:
    server = RedisServer(tmp_path / "redis", "--requirepass", "s3cret")
    try:
        where = {"shared": "sg.conf:9: welcome shared URL",
                 "shared-password-file": "sg.conf:10: welcome shared-password-file /p"}
        bad = Proxy(tmp_path, "a", SharedSettings(urls=(server.url,), password="wrong",
                                                  where=where))
        none = Proxy(tmp_path, "b", SharedSettings(urls=(server.url,), where=where))
        good = Proxy(tmp_path, "c", SharedSettings(urls=(server.url,), password="s3cret"))
        proxies += [bad, none, good]
        assert bad.welcome.link.state == MISCONFIGURED
        assert bad.welcome.link.detail.startswith(
            "sg.conf:9: welcome shared URL: the server refused to let the default user in (")
        assert bad.welcome.link.detail.endswith(
            "); check the password (sg.conf:10: welcome shared-password-file /p) and "
            "shared-user")
        assert none.welcome.link.state == MISCONFIGURED
        assert none.welcome.link.detail.endswith(
            "check the password (no shared-password-file line) and shared-user")
        assert good.welcome.link.state == UP
        assert good.new(KEYS[:3], 1.0) == set(KEYS[:3])
    finally:
        server.stop()


def test_an_acl_user_limited_to_the_prefix_is_enough(tmp_path: Path, proxies: list[Proxy],
                                                     redis_server: RedisServer) -> None:
    """The ACL of docs/redis.md: keys under the prefix, read/write/scripting/connection."""
    assert redis_server.cli("ACL", "SETUSER", "squidguard", "on", ">pw", "~sgb:*",
                            "resetchannels", "-@all", "+@read", "+@write", "+@scripting",
                            "+@connection", "+info") == "OK"
    for window in (None, 600.0):
        p = Proxy(tmp_path, f"w{window}", SharedSettings(
            urls=(redis_server.url,), user="squidguard", password="pw",
            prefix=f"sgb:{'once' if window is None else 'win'}"), window)
        proxies.append(p)
        assert p.welcome.link.state == UP, p.log
        assert p.new(KEYS[:5] + KEYS[:2], 6000.0) == set(KEYS[:5])
        assert p.welcome.fill(6000.0) == (50, p.welcome.layout.shard_bits)
    lock_out = Proxy(tmp_path, "other", SharedSettings(urls=(redis_server.url,),
                                                       user="squidguard", password="pw",
                                                       prefix="other"))
    proxies.append(lock_out)
    assert lock_out.welcome.link.state == MISCONFIGURED
    assert lock_out.welcome.link.detail.startswith(
        "welcome shared: the server refused a command (NoPermissionError: ")
    assert lock_out.welcome.link.detail.endswith(
        "user 'squidguard' needs the commands and the keys other:* of docs/redis.md (ACL)")
    assert lock_out.new(KEYS[:5], 6000.0) == set()


def test_unix_socket_and_database_number(tmp_path: Path, proxies: list[Proxy]) -> None:
    sock = tmp_path / "redis" / "redis.sock"
    server = RedisServer(tmp_path / "redis", "--unixsocket", str(sock), "--unixsocketperm", "700")
    try:
        p = Proxy(tmp_path, "a", SharedSettings(urls=(f"unix://{sock}?db=3",)))
        proxies.append(p)
        assert p.welcome.link.state == UP, p.log
        assert p.new(KEYS[:10], 5.0) == set(KEYS[:10])
        assert server.cli("-n", "3", "DBSIZE") == "2" and server.cli("DBSIZE") == "0"
    finally:
        server.stop()


def test_tls(tmp_path: Path, proxies: list[Proxy]) -> None:
    """rediss:// with the CA given as redis-py's ssl_ca_certs query parameter."""
    server = RedisServer(tmp_path / "redis", tls=True)
    try:
        assert server.url.startswith("rediss://")
        a, b = (Proxy(tmp_path, n, SharedSettings(urls=(server.url,))) for n in "ab")
        proxies += [a, b]
        assert a.welcome.link.state == UP, a.log
        assert a.new(KEYS[:10], 5.0) | b.new(KEYS[:20], 5.0) == set(KEYS[:20])
        assert not a.new(KEYS[:20], 5.0) and not b.new(KEYS[:20], 5.0)
        plain = Proxy(tmp_path, "c", SharedSettings(urls=(f"redis://127.0.0.1:{server.port}/0",)))
        proxies.append(plain)
        assert plain.welcome.link.state in (DOWN, MISCONFIGURED)  # TLS port, no TLS
    finally:
        server.stop()


def test_something_that_is_not_redis_is_named(tmp_path: Path, proxies: list[Proxy]) -> None:
    """A server that answers in another protocol (here: an SSH banner).

    Like sshd, it sends its banner and then reads what the client sends until the client
    hangs up: closing right after the banner would make the kernel answer the client's
    first command with a reset, and the client could see that (down) before the banner."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def talk(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.2)
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            while not stop.is_set():
                try:
                    if not conn.recv(4096):
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=talk, args=(conn,), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        # connect_timeout: on a loaded machine this thread's answer may take over a second
        p = Proxy(tmp_path, "a", SharedSettings(urls=(f"redis://127.0.0.1:{port}/0",),
                                                where={"shared": "sg.conf:9: welcome shared U"},
                                                connect_timeout=10.0))
        proxies.append(p)
        assert p.welcome.link.state == MISCONFIGURED, p.welcome.link.detail
        assert p.welcome.link.detail.startswith(
            "sg.conf:9: welcome shared U: what answers there does not speak the Redis protocol")
    finally:
        stop.set()
        t.join(5)
        listener.close()


def test_another_filter_on_the_same_keys_is_refused(tmp_path: Path, proxies: list[Proxy],
                                                    redis_server: RedisServer) -> None:
    shared = SharedSettings(urls=(redis_server.url,))
    first = Proxy(tmp_path, "a", shared)
    proxies.append(first)
    other = SharedWelcome(WelcomeSettings(redirect="http://p.example/",
                                          state=str(tmp_path / "b" / "w.bloom"),
                                          capacity=20_000, error=0.001), shared, print,
                          wait=10)
    try:
        assert other.link.state == MISCONFIGURED
        assert "says another filter is stored there" in other.link.detail
        assert "give every proxy the same capacity, error, window and shared-shards, or " \
               "another shared-prefix" in other.link.detail
    finally:
        other.close()


def test_local_fallback_decides_during_an_outage_and_tells_redis_afterwards(
        tmp_path: Path, proxies: list[Proxy]) -> None:
    """shared-fallback local: while Redis is away this proxy's outage filter welcomes each
    client once; those keys are written to Redis on reconnecting, so another proxy does
    not welcome them again; the local cache got no bit Redis had not confirmed."""
    port = free_port()
    shared = SharedSettings(urls=(f"redis://127.0.0.1:{port}/0",), fallback="local")
    a = Proxy(tmp_path, "a", shared)
    proxies.append(a)
    assert a.welcome.link.state == DOWN
    assert a.new(KEYS[:20], 1.0) == set(KEYS[:20])
    assert a.new(KEYS[:20], 2.0) == set()
    current, _ = a.welcome.filters(2.0)
    assert not any(k in current for k in KEYS[:20])
    server = RedisServer(tmp_path / "redis", port=port)
    try:
        end = time.monotonic() + 30
        while a.welcome.link.state != UP:
            assert time.monotonic() < end, a.log
            time.sleep(0.05)
        b = Proxy(tmp_path, "b", SharedSettings(urls=(server.url,)))
        proxies.append(b)
        assert b.new(KEYS[:30], 3.0) == set(KEYS[20:30])
        assert a.new(KEYS[:40], 4.0) == set(KEYS[30:40])
    finally:
        server.stop()


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, base in ((0, 0.1), (1, 0.2), (3, 0.8), (8, 25.6), (9, 30.0), (60, 30.0)):
        waits = [backoff(attempt, rng) for _ in range(200)]
        assert all(base / 2 <= w <= base for w in waits), (attempt, min(waits), max(waits))
        assert max(waits) - min(waits) > base / 4  # jittered, not one value
    assert BACKOFF_CAP == 30.0


def test_too_many_shards_for_the_filter_is_refused(tmp_path: Path) -> None:
    settings = WelcomeSettings(redirect="http://p.example/", state=str(tmp_path / "w.bloom"),
                               capacity=100, error=0.01)
    shared = SharedSettings(urls=("redis://127.0.0.1:1/0",), shards=5000,
                            where={"shared": "sg.conf:9: welcome shared X"})
    with pytest.raises(BloomError) as err:
        SharedWelcome(settings, shared, print)
    assert str(err.value) == ("sg.conf:9: welcome shared X: shared-shards 5000 splits a filter "
                              "of 959 bits too finely; use at most 479, or fewer")


def test_cluster_master_lost_and_back_empty(tmp_path: Path, proxies: list[Proxy],
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    """A master of a 3-master cluster (no replicas, no persistence) is killed: batches touching
    its shards are answered by the fallback at once; it comes back empty, and the helper
    reports exactly its shards as lost."""
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster-fault"))
    try:
        shared = SharedSettings(urls=tuple(cluster.urls), cluster=True, shards=6, prefix="f",
                                deadline=2.0)
        p = Proxy(tmp_path, "a", shared)
        proxies.append(p)
        assert p.new(KEYS[:200], 50.0) == set(KEYS[:200])
        victim = cluster.nodes[1]
        # redis-cli without -c answers MOVED for a key of another master
        lost = [s for s in range(6)
                if victim.cli("EXISTS", p.welcome.layout.marker_key(s).decode()) == "1"]
        assert lost  # shard s of 6 lies in slot range s/6: the middle master holds some
        same = BloomFilter(10_000, 0.001)  # the proxy's parameters: the same shard per key
        on_victim = {k for k in KEYS[200:300] if same.positions(k, 6)[0] in lost}
        assert 0 < len(on_victim) < 100
        victim.kill()
        # The other masters still answer for their shards; the victim's get the fallback.
        assert p.new(KEYS[200:300], 51.0) == set(KEYS[200:300]) - on_victim
        assert p.welcome.link.state == DOWN
        assert p.new(KEYS[200:300], 51.5) == set()  # down: fallback seen for all, at once
        victim.start()  # nodes.conf kept: it rejoins with its slots, without data
        end = time.monotonic() + 60
        while p.welcome.link.state != UP:
            assert time.monotonic() < end, p.log
            time.sleep(0.1)
        assert sum(f"without the welcome state of {len(lost)} of 6 shard(s)" in line
                   for line in p.log) == 1, p.log
        # Clients never confirmed are welcomed now; those known to the cache stay known.
        assert p.new(KEYS[200:300], 52.0) == on_victim
        assert p.new(KEYS[:200], 53.0) == set()
    finally:
        cluster.stop()


def test_a_silent_server_does_not_hold_the_start(tmp_path: Path) -> None:
    """Redis accepting connections but never answering (stalled): the helper starts after
    its deadline, CONNECTING, answering with the fallback, while the thread keeps trying."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    settings = WelcomeSettings(redirect="http://p.example/", state=str(tmp_path / "w.bloom"),
                               capacity=1000, error=0.001)
    # The connect timeout (30 s) outlasts the test: the first attempt cannot end by itself.
    shared = SharedSettings(urls=(f"redis://127.0.0.1:{port}/0",), deadline=0.05,
                            connect_timeout=30.0)
    w = SharedWelcome(settings, shared, print)
    try:
        assert w.link.state == CONNECTING and not w.link.up
        assert w.first_visits(KEYS[:5], 1.0) == [False] * 5
        assert w.describe(1.0).endswith("deadline 50 ms, fallback seen): CONNECTING (no answer "
                                         "yet; the fallback answers meanwhile); local cache 0 "
                                         f"entries at {tmp_path / 'w.bloom'}")
    finally:
        listener.settimeout(5)
        with contextlib.suppress(OSError):  # end the attempt: EOF on its connection
            conn, _ = listener.accept()
            conn.close()
        listener.close()
        w.close()

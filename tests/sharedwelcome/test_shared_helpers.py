"""Helper processes sharing one welcome state on a real redis-server (issue 12)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .running import COMMAND, WELCOME, Helper, feed, request, write_config
from .servers import RedisServer

URL = "http://www.example.com/"
WELCOMED = WELCOME.format(url=URL)


def clients(count: int, net: int = 1) -> list[str]:
    return [f"10.{net}.{i // 250}.{i % 250 + 1}" for i in range(count)]


def shuffled_requests(names: list[str], repeat: int, seed: int) -> list[bytes]:
    lines = [request(c, URL) for c in names for _ in range(repeat)]
    random.Random(seed).shuffle(lines)
    return lines


def welcomes(lines: list[bytes], replies: list[str]) -> Counter[str]:
    """Welcomes per client; every other reply must be a plain pass."""
    assert len(lines) == len(replies)
    count: Counter[str] = Counter()
    for line, reply in zip(lines, replies, strict=True):
        if reply == WELCOMED:
            count[line.split()[1].split(b"/")[0].decode()] += 1
        else:
            assert reply == "ERR", (line, reply)
    return count


def test_two_helpers_with_their_own_state_welcome_each_client_once(
        tmp_path: Path, redis_server: RedisServer) -> None:
    """Two proxies (own local filter files) under parallel load: one welcome per client."""
    names = clients(3000)
    # A deadline no batch misses on a loaded test machine (a miss counts the client seen).
    a = Helper(write_config(tmp_path, "a", redis_server.url, "    shared-deadline 5s\n"))
    b = Helper(write_config(tmp_path, "b", redis_server.url, "    shared-deadline 5s\n"))
    try:
        la, lb = shuffled_requests(names, 3, 1), shuffled_requests(names, 3, 2)
        ra: list[str] = []
        rb: list[str] = []
        threads = [feed(a, la, 97, ra), feed(b, lb, 89, rb)]
        for t in threads:
            t.join(120)
        total = welcomes(la, ra) + welcomes(lb, rb)
        assert total == Counter(dict.fromkeys(names, 1))
        # Both proxies' local filters now know every client: no more network calls, no welcome.
        assert a.ask([request(c, URL) for c in names[:50]]) == ["ERR"] * 50
    finally:
        a.stop()
        b.stop()
    assert (tmp_path / "a" / "welcome.bloom").exists()
    assert (tmp_path / "b" / "welcome.bloom").exists()
    assert not any("ERROR" in e or "unreachable" in e for e in a.errors + b.errors), \
        a.errors + b.errors


def test_redis_killed_mid_load_and_restarted_from_its_append_only_file(tmp_path: Path) -> None:
    """Redis with appendfsync always dies (SIGKILL) while two helpers are busy and comes
    back with its data: every line is answered, nobody is welcomed twice, the clients
    asked about while it was down are welcomed once it is back (all but those of the
    batches in flight at the kill, which Redis may have applied)."""
    server = RedisServer(tmp_path / "redis")
    server.stop()
    server.extra = ["--appendonly", "yes", "--appendfsync", "always"]
    server.start()
    # A long deadline: this test is about the crash (a batch that misses the deadline is
    # a fault too, and fsync on a busy disk could make one miss 50 ms).
    a = Helper(write_config(tmp_path, "a", server.url, "    shared-deadline 5s\n"))
    b = Helper(write_config(tmp_path, "b", server.url, "    shared-deadline 5s\n"))
    try:
        names = clients(2000)
        la, lb = shuffled_requests(names, 2, 3), shuffled_requests(names, 2, 4)
        ra: list[str] = []
        rb: list[str] = []
        threads = [feed(a, la, 20, ra, pause=0.002), feed(b, lb, 20, rb, pause=0.002)]
        while len(ra) < len(la) // 3:
            time.sleep(0.01)
        server.kill()
        for h in (a, b):
            h.wait_for_log("Redis unreachable")
        for t in threads:
            t.join(120)
        first = welcomes(la, ra) + welcomes(lb, rb)
        assert max(first.values()) == 1
        server.start()
        for h in (a, b):
            h.wait_for_log("reachable again")
        lines = [request(c, URL) for c in names]
        again = welcomes(lines, a.ask(lines)) + welcomes(lines, b.ask(lines))
        total = first + again
        assert max(total.values()) == 1
        assert len(first) < len(names)  # some were asked about while Redis was down
        # A batch in flight when Redis died may have been applied with its reply lost:
        # its new clients count as seen (never twice). Only those: 20 lines per helper.
        assert len(names) - 40 <= len(total) <= len(names)
    finally:
        a.stop()
        b.stop()
        server.stop()
    assert not any("came back without" in e for e in a.errors + b.errors)
    for h in (a, b):  # one line per change of state, however many retries were refused
        assert sum("Redis unreachable" in e for e in h.errors) == 1, h.errors
        assert sum("Redis reachable again after " in e for e in h.errors) == 1, h.errors


def test_redis_restarted_empty_is_reported_and_welcomes_resume(tmp_path: Path) -> None:
    """A Redis restarted without persistence is detected (marker keys gone) and said
    once; clients never confirmed are welcomed once it is back."""
    server = RedisServer(tmp_path / "redis")
    a = Helper(write_config(tmp_path, "a", server.url))
    try:
        first = clients(50, net=2)
        lines = [request(c) for c in first]
        assert welcomes(lines, a.ask(lines)) == Counter(dict.fromkeys(first, 1))
        server.kill()
        later = clients(30, net=3)
        lines = [request(c) for c in later]
        assert a.ask(lines) == ["ERR"] * 30  # fallback seen: no welcome, no local bit
        server.start()
        a.wait_for_log("came back without the welcome state of 1 of 1 shard(s)")
        a.wait_for_log("reachable again")
        assert welcomes(lines, a.ask(lines)) == Counter(dict.fromkeys(later, 1))
        # Clients confirmed before the loss stay known to this proxy's local filter.
        assert a.ask([request(c) for c in first]) == ["ERR"] * 50
    finally:
        a.stop()
        server.stop()
    assert sum("came back without" in e for e in a.errors) == 1


def test_stalled_redis_holds_no_batch_beyond_the_deadline(tmp_path: Path,
                                                          redis_server: RedisServer) -> None:
    """SIGSTOP: batches with new clients are answered without waiting for Redis (the
    deadline, then at once while it is down) and without a welcome; once it runs, every
    client is welcomed exactly once (those of the batches that missed the deadline at
    their next request)."""
    # 1 s: no batch misses it on a loaded test machine while Redis runs; a stalled
    # Redis would hold a batch forever without it.
    a = Helper(write_config(tmp_path, "a", redis_server.url, "    shared-deadline 1s\n"))
    b = Helper(write_config(tmp_path, "b", redis_server.url, "    shared-deadline 1s\n"))
    try:
        warm = clients(20, net=4)
        lines = [request(c) for c in warm]
        total = welcomes(lines, a.ask(lines)) + welcomes(lines, b.ask(lines))
        redis_server.signal(signal.SIGSTOP)
        stalled = clients(40, net=5)
        for h in (a, b):
            for i in range(0, 40, 10):
                part = [request(c) for c in stalled[i : i + 10]]
                t0 = time.monotonic()
                replies = h.ask(part)
                assert time.monotonic() - t0 < 5.0
                total += welcomes(part, replies)
        assert total == Counter(dict.fromkeys(warm, 1))  # nobody welcomed while stalled
        redis_server.signal(signal.SIGCONT)
        for h in (a, b):
            h.wait_for_log("reachable again")
            # Each sent its first stalled batch before the deadline passed; Redis ran it
            # on waking, and the replies still came: the new ones are owed a welcome.
            h.wait_for_log("Redis answered a batch after the deadline: ")
        owed = [int(e.split("deadline: ")[1].split()[0]) for h in (a, b) for e in h.errors
                if "after the deadline" in e]
        assert sum(owed) == 10  # the same 10 clients led both helpers' first batch
        fresh = clients(30, net=6)
        lines = [request(c) for c in fresh + stalled]
        total += welcomes(lines, a.ask(lines)) + welcomes(lines, b.ask(lines))
        assert total == Counter(dict.fromkeys(warm + stalled + fresh, 1))
    finally:
        a.stop()
        b.stop()


def test_check_reports_state_fill_and_false_positive_rate(tmp_path: Path,
                                                          redis_server: RedisServer) -> None:
    conf = write_config(tmp_path, "a", redis_server.url)
    a = Helper(conf)
    try:
        names = clients(100, net=7)
        a.ask([request(c) for c in names])
    finally:
        a.stop()
    out = subprocess.run([COMMAND, "-c", str(conf), "--check"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stderr.splitlines() if x.startswith("welcome: shared"))
    assert f"shared on Redis {redis_server.url} (1 shard(s) of 1437759 bits, k=10, " \
           f"deadline 50 ms, fallback seen): up " in line
    assert "1000/1437759 bits set, ~100 clients, false-positive rate now ~" in line
    redis_server.stop()
    out = subprocess.run([COMMAND, "-c", str(conf), "--check"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert ": UNREACHABLE (ConnectionError: " in out.stderr


def test_redis_is_imported_only_for_a_shared_welcome(tmp_path: Path) -> None:
    """A welcome block without a shared line never loads redis-py."""
    shared = write_config(tmp_path, "a", "redis://127.0.0.1:1/0")
    local = tmp_path / "local.conf"
    local.write_text("\n".join(x for x in shared.read_text().splitlines()
                               if "shared" not in x) + "\n")
    probe = ("import sys; from squidguard_bloom.helper import runtime; "
             "rt = runtime.build(runtime.Options(config=sys.argv[1])); "
             "print('redis' in sys.modules); rt.close()")
    for path, loaded in ((local, "False"), (shared, "True")):
        out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                             text=True, check=True, timeout=60)
        assert out.stdout.strip() == loaded, out.stderr


def test_password_problems_fail_check_naming_the_line(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", "--requirepass", "s3cret")
    try:
        secret = tmp_path / "db" / "redis.pass"
        conf = write_config(tmp_path, "a", server.url, f"    shared-password-file {secret}\n")
        line = next(i for i, x in enumerate(conf.read_text().splitlines(), 1)
                    if "shared-password-file" in x)
        out = subprocess.run([COMMAND, "-c", str(conf), "--check"], capture_output=True,
                             text=True, timeout=60, check=False)
        assert out.returncode == 1
        assert out.stderr.splitlines()[0] == (
            f"{conf}:{line}:5: error: welcome shared-password-file {secret}: cannot read it "
            f"(No such file or directory); its first line must be the Redis password, "
            f"readable by the user the helper runs as")
        secret.write_text("wrong\n")
        out = subprocess.run([COMMAND, "-c", str(conf), "--check"], capture_output=True,
                             text=True, timeout=60, check=False)
        assert out.returncode == 1
        assert (f"welcome shared: ERROR: {conf}:{line - 1}: welcome shared {server.url}: the "
                f"server refused to let the default user in (") in out.stderr
        assert (f"check the password ({conf}:{line}: welcome shared-password-file {secret}) "
                f"and shared-user") in out.stderr
        assert out.stderr.rstrip().endswith(
            f"{conf}: NOT usable as it is: the shared welcome state is misconfigured (see "
            f"above); filtering works, but nobody is welcomed")
        secret.write_text("s3cret\n")
        out = subprocess.run([COMMAND, "-c", str(conf), "--check"], capture_output=True,
                             text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
    finally:
        server.stop()


def test_known_clients_stay_in_c_and_new_ones_share_one_round_trip(
        tmp_path: Path, redis_server: RedisServer) -> None:
    """In one helper (runtime.build, fast path on): a batch's possible first visits are
    left by C to Python and asked about in one call; known clients never leave C."""
    from squidguard_bloom.core.lists.store import compile_list
    from squidguard_bloom.helper.loop import Loop as LoopHelper
    from squidguard_bloom.helper.runtime import Options, build

    conf = write_config(tmp_path, "a", redis_server.url)
    compile_list("domain", str(tmp_path / "db" / "ads" / "domains"))  # C reads compiled lists
    rt = build(Options(config=str(conf)))
    try:
        helper = LoopHelper(rt)
        welcome = rt.welcome
        assert welcome is not None and not welcome.decides
        assert welcome.settle(10)
        names = clients(40, net=8)
        batch = b"".join(request(c) for c in names + names[:5]).rstrip(b"\n")
        out = helper.batch(batch).decode().splitlines()
        assert out == [WELCOMED] * 40 + ["ERR"] * 5
        assert (welcome.asked, rt.fast.python_lines) == (40, 45)
        out = helper.batch(batch).decode().splitlines()
        assert out == ["ERR"] * 45
        assert (welcome.asked, rt.fast.python_lines) == (40, 45)  # all answered in C
        blocked = b"http://ads.example/x 10.9.9.9/- - GET"
        assert helper.batch(blocked) == b'OK status=302 url="http://block.example/"\n'
        assert welcome.asked == 40
    finally:
        rt.close()

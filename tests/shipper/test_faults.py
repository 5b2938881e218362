"""Fault injection against a real sshd: every time, the remote bytes must equal the local ones.

Faults: the connection cut mid-batch (RST), a silent stall, sshd restarted
with its sessions killed, log rotation by rename and by copytruncate while
shipping, ``kill -9`` of the shipper, the monitor's disk full, and the
failures only an operator can fix (unknown or changed host key, refused key).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from squidguard_bloom.shipper.transport import Link, LinkSettings

from .harness import Harness, lines
from .servers import FaultProxy, free_port, keygen


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def shipper_log(proc: subprocess.Popen[bytes]) -> str:
    return proc.log_path.read_text()  # type: ignore[attr-defined]


def assert_no_noise(text: str) -> None:
    """Only the shipper's own one-line messages: no traceback, no asyncio chatter."""
    foreign = [ln for ln in text.splitlines() if ln and " squidguard-bloom-ship " not in ln[:60]]
    assert not foreign, "\n".join(foreign[:20])


def test_cut_mid_batch_resumes_byte_exact(harness: Harness, proxy: FaultProxy) -> None:
    """RSTs while a window of 256 KiB writes is in flight: nothing lost, nothing doubled."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 60_000))  # 9 MB
    proc = harness.start(str(log), port=proxy.port, remote_fsync=False, status_interval=0.5)
    remote = harness.remote_root / "squidGuard"
    for threshold in (1_000_000, 3_000_000, 6_000_000):
        harness.wait_for(
            lambda t=threshold: (
                remote.exists() and sum(p.stat().st_size for p in remote.iterdir()) > t
            ),
            30,
            f"{threshold} bytes on the monitor",
        )
        proxy.cut()
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 60, "catch-up")
    assert harness.stop(proc) == 0
    text = shipper_log(proc)
    assert text.count("link to") >= 3 and "restored" in text, text
    assert "INFO: status: link " in text  # periodic, not only on SIGUSR1
    assert_no_noise(text)
    assert harness.remote_bytes("squidGuard") == log.read_bytes()


def test_stall_is_detected_within_the_bound(harness: Harness, proxy: FaultProxy) -> None:
    """A silent stall (nothing forwarded), idle or with writes in flight, is noticed within
    keepalive 1 s x (2+1) = 3 s (+1.5 s slack for a loaded machine), then healed."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 100))
    proc = harness.start(str(log), port=proxy.port, write_timeout=30)
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 15, "start")
    for round_, busy in enumerate((False, True)):
        proxy.stall()
        stalled_at = time.monotonic()
        if busy:
            append(log, lines(100, 100))  # in flight when the link goes silent
        harness.wait_for(lambda r=round_: shipper_log(proc).count("lost") > r, 10, "detection")
        detected = time.monotonic() - stalled_at
        assert detected <= 3.0 + 1.5, f"stall (busy={busy}) noticed after {detected:.1f} s"
        time.sleep(0.5)
        proxy.resume()
        proxy.cut()  # the proxy's stale, half-forwarded connections
        harness.wait_for(lambda r=round_: shipper_log(proc).count("restored") > r, 10, "heal")
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 20, "resume")
    assert harness.stop(proc) == 0
    assert_no_noise(shipper_log(proc))


def test_hung_sftp_server_is_caught_by_the_write_deadline(harness: Harness) -> None:
    """The SFTP server hangs while sshd still answers keepalives: only the per-request
    deadline (write_timeout 2 s) can notice; the shipper reconnects and catches up."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 100))
    proc = harness.start(str(log), write_timeout=2)
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 15, "start")
    frozen = harness.sshd.freeze_sftp_servers()
    assert frozen, "no SFTP server process found to freeze"
    try:
        hung_at = time.monotonic()
        append(log, lines(100, 100))
        harness.wait_for(lambda: "no answer to an SFTP request" in shipper_log(proc), 10, "timeout")
        assert time.monotonic() - hung_at <= 2.0 + 1.5
        assert "keepalive" not in shipper_log(proc)
        harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 20, "heal")
    finally:
        harness.sshd.thaw(frozen)
    assert harness.stop(proc) == 0
    assert_no_noise(shipper_log(proc))


def test_sshd_restart_with_sessions_killed(harness: Harness) -> None:
    """sshd and its sessions die for 1.5 s while lines are written; shipping recovers alone."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 1000))
    proc = harness.start(str(log))
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 15, "start")
    harness.sshd.stop()
    for i in range(10):
        append(log, lines(1000 + i * 100, 100))
        time.sleep(0.15)
    harness.sshd.start()
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 20, "resume")
    assert harness.stop(proc) == 0
    text = shipper_log(proc)
    assert "restored" in text
    # One warning per change of fault, not one per attempt: the link is lost,
    # then connecting is refused (retried at most every 0.5 s over 1.5 s, so
    # several attempts) until sshd is back; the refusal is not seen when the
    # loss is only noticed once sshd is back.
    warnings = [ln.split(" WARNING: ", 1)[1] for ln in text.splitlines() if " WARNING: " in ln]
    kinds = ["lost" if " lost: " in w else "refused" if "ConnectionRefusedError" in w else w
             for w in warnings]
    assert kinds in (["lost", "refused"], ["lost"]), (kinds, text)


def test_rotation_rename_and_copytruncate_while_shipping(harness: Harness) -> None:
    """Both logrotate styles while lines keep coming: each generation arrives whole."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 10))
    proc = harness.start(str(log), rotate_wait=0.3)
    # Files rotated before the shipper's first start are history it does not ship.
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 15, "start")
    generations: list[bytes] = []
    current = log.read_bytes()
    n = 10
    for step in range(6):
        for _ in range(5):
            data = lines(n, 200)
            n += 200
            append(log, data)
            current += data
            time.sleep(0.03)
        done = b"".join(generations) + current
        harness.wait_for(lambda d=done: harness.remote_bytes("squidGuard") == d, 15, "catch-up")
        append(log, b"no newline yet")  # the rotated file ends mid-line
        current += b"no newline yet"
        rotated = harness.logs / f"squidGuard.log.{step + 1}"
        if step % 2 == 0:
            os.rename(log, rotated)  # logrotate "create"
            log.write_bytes(b"")
        else:
            shutil.copyfile(log, rotated)  # logrotate "copytruncate"
            os.truncate(log, 0)
        generations.append(current)
        current = b""
    append(log, lines(n, 10))
    generations.append(lines(n, 10))

    def shipped() -> list[bytes]:
        return [p.read_bytes() for p in harness.remote_segments("squidGuard")]

    harness.wait_for(lambda: shipped() == generations, 30, "all generations")
    assert harness.stop(proc) == 0
    assert "copytruncate" in shipper_log(proc)


def test_kill_9_at_random_moments(harness: Harness) -> None:
    """kill -9 of the shipper while it ships and rotates: after restarts, exact bytes."""
    rng = random.Random(5)
    log = harness.logs / "squidGuard.log"
    n = 0
    for round_ in range(5):
        proc = harness.start(str(log), rotate_wait=0.2, checkpoint_interval=0.3)
        deadline = time.monotonic() + rng.uniform(0.5, 1.5)
        while time.monotonic() < deadline:
            append(log, lines(n, 300))
            n += 300
            time.sleep(0.01)
        if round_ == 2:
            os.rename(log, harness.logs / "squidGuard.log.1")
            append(log, lines(n, 300))
            n += 300
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    result = harness.run_once(str(log))
    assert result.returncode == 0, result.stderr
    expected = [harness.logs / "squidGuard.log.1", log]
    assert [p.read_bytes() for p in harness.remote_segments("squidGuard")] == [
        p.read_bytes() for p in expected
    ]


@pytest.fixture
def tiny_tmpfs(harness: Harness) -> Path:
    """The monitor's directory on a 512 KiB tmpfs (root only)."""
    target = harness.remote_root
    target.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs to fill the monitor's disk: {mounted.stderr}")
    yield target
    with contextlib.suppress(subprocess.CalledProcessError):
        subprocess.run(["umount", "-l", str(target)], check=True)


def test_monitor_disk_full(harness: Harness, tiny_tmpfs: Path) -> None:
    """A full disk on the monitor is reported once, retried, and healed without loss."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 6000))  # 900 KB into 512 KiB
    proc = harness.start(str(log))
    harness.wait_for(lambda: "disk full" in shipper_log(proc), 20, "disk-full report")
    subprocess.run(["mount", "-o", "remount,size=4m", str(tiny_tmpfs)], check=True)
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 30, "heal")
    assert harness.stop(proc) == 0
    assert shipper_log(proc).count("disk full") == 1


def test_unknown_host_key_is_refused(harness: Harness) -> None:
    """An empty known_hosts: exit 78, one clear message, nothing written."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 10))
    empty = harness.root / "empty_known_hosts"
    empty.write_text("")
    result = harness.run_once(str(log), known_hosts=empty)
    assert result.returncode == 78
    unknown = r"ERROR: giving up: the host key of 127\.0\.0\.1:\d+ is unknown"
    assert re.search(unknown, result.stderr), result.stderr
    assert f"ssh-keyscan -p {harness.port} 127.0.0.1" in result.stderr
    assert f"'[127.0.0.1]:{harness.port} <type> <key>'" in result.stderr
    assert result.stderr.count(" ERROR: ") == 1
    assert not harness.remote_root.exists()


def test_changed_host_key_is_refused(harness: Harness) -> None:
    """known_hosts lists another key for the monitor: never accepted, exit 78."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 10))
    other = keygen(harness.root / "other_host_key").rsplit(" ", 1)[0]
    changed = harness.root / "changed_known_hosts"
    changed.write_text(f"[127.0.0.1]:{harness.port} {other}\n")
    result = harness.run_once(str(log), known_hosts=changed)
    assert result.returncode == 78
    assert "has CHANGED" in result.stderr
    assert not harness.remote_root.exists()


def test_refused_key_gives_up(harness: Harness) -> None:
    """A key the monitor does not know: exit 78 with a hint about authorized_keys."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 10))
    stranger = harness.root / "stranger_key"
    keygen(stranger)
    result = harness.run_once(str(log), key=stranger)
    assert result.returncode == 78
    assert "refused the key" in result.stderr and "authorized_keys" in result.stderr
    assert not harness.remote_root.exists()


def test_known_hosts_entry_for_port_22_in_either_form(tmp_path: Path) -> None:
    """On port 22 OpenSSH names a host without brackets; a hand-written ``[host]:22`` entry
    is taken as the same host rather than failing every connect as "unknown host key"."""
    key = tmp_path / "key"
    host_pub = keygen(tmp_path / "host").rsplit(" ", 1)[0]
    keygen(key)
    known = tmp_path / "known_hosts"
    for entry in ("[monitor.example]:22", "monitor.example", "@revoked [other]:22"):
        known.write_text(f"{entry} {host_pub}\n")
        link = Link(LinkSettings("monitor.example", "u", key, known, port=22))
        _, trusted = link._load_credentials()
        found = trusted.match("monitor.example", "", None)[0]
        assert bool(found) == (not entry.startswith("@")), entry
    assert link.host_pattern == "monitor.example"
    assert Link(LinkSettings("m", "u", key, known, port=2222)).host_pattern == "[m]:2222"


def test_monitor_unreachable_once_gives_up_with_a_hint(harness: Harness) -> None:
    """Nothing listens: one warning naming what to check, then --once gives up with exit 75."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 10))
    result = harness.run_once(str(log), port=free_port())
    assert result.returncode == 75, result.stderr
    assert result.stderr.count(" WARNING: ") == 1, result.stderr
    assert "is sshd running on the monitor and listening on port" in result.stderr
    assert "giving up after 5 attempts (--once)" in result.stderr


def test_unusable_remote_dir_is_named(harness: Harness) -> None:
    """remote_dir cannot be created (a file is in the way): the message names the path and
    what to check; --once retries, then gives up with exit 75."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 10))
    blocker = harness.sshd.data / "not-a-dir"
    blocker.write_text("")
    result = harness.run_once(str(log), remote_dir=str(blocker / "incoming"))
    assert result.returncode == 75, result.stderr
    assert f"cannot create {blocker}/incoming/squidGuard/00000001-" in result.stderr
    assert "check remote_dir" in result.stderr
    # Each connect succeeds, yet the back-off keeps growing and no "restored" line
    # alternates with the warning: one line for the whole outage.
    assert result.stderr.count(" WARNING: ") == 1, result.stderr
    assert "restored" not in result.stderr and "link to" not in result.stderr

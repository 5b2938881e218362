"""Fault injection against a real sshd: every time, the remote bytes must equal the local ones.

Faults: the connection cut mid-batch (RST), a silent stall, sshd restarted
with its sessions killed, log rotation by rename and by copytruncate while
shipping, ``kill -9`` of the shipper, the monitor's disk full, and the
failures only an operator can fix (unknown or changed host key, refused key).

No assertion depends on how long anything took or on which request was in
flight when a fault struck: the tests wait for conditions (with deadlines far
beyond what they need) and read the fault kinds from the stable ``[fault=KIND]``
tags of the shipper's log, never from its prose.
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

from squidguard_bloom.shipper.faults import Fault
from squidguard_bloom.shipper.transport import Link, LinkSettings

from .harness import Harness, failed_attempts, lines, restorations, warned_faults
from .servers import FaultProxy, free_port, keygen


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


WAIT = 60  # seconds: a deadline for things that take well under one, on a loaded machine


def shipper_log(proc: subprocess.Popen[bytes]) -> str:
    return proc.log_path.read_text()  # type: ignore[attr-defined]


def assert_no_noise(text: str) -> None:
    """Only the shipper's own one-line messages: no traceback, no asyncio chatter."""
    foreign = [ln for ln in text.splitlines() if ln and " squidguard-bloom-ship " not in ln[:60]]
    assert not foreign, "\n".join(foreign[:20])


def test_cut_mid_batch_resumes_byte_exact(harness: Harness, proxy: FaultProxy) -> None:
    """RSTs while a window of 256 KiB writes is in flight: nothing lost, nothing doubled.

    Each cut hits a link that is up (the previous cut's restoration was logged),
    so each is one "lost" fault, whatever request it interrupted."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 60_000))  # 9 MB
    proc = harness.start(str(log), port=proxy.port, remote_fsync=False, status_interval=0.5)
    remote = harness.remote_root / "squidGuard"
    for cut, threshold in enumerate((1_000_000, 3_000_000, 6_000_000)):
        harness.wait_for(
            lambda c=cut, t=threshold: (
                restorations(shipper_log(proc)) == c
                and remote.exists()
                and sum(p.stat().st_size for p in remote.iterdir()) > t
            ),
            WAIT,
            f"the link up again after {cut} cuts, and {threshold} bytes on the monitor",
        )
        proxy.cut()
        harness.wait_for(
            lambda c=cut: len(warned_faults(shipper_log(proc))) > c, WAIT, f"cut {cut + 1} seen"
        )
    harness.wait_for(
        lambda: (
            restorations(shipper_log(proc)) == 3
            and harness.remote_bytes("squidGuard") == log.read_bytes()
        ),
        WAIT,
        "the link up again after the last cut, and everything shipped",
    )
    # No SIGUSR1 here: a status line before the stop can only be a periodic one.
    harness.wait_for(lambda: "INFO: status: link " in shipper_log(proc), WAIT, "a status line")
    assert harness.stop(proc) == 0
    text = shipper_log(proc)
    assert warned_faults(text) == [Fault.LOST] * 3, text
    assert restorations(text) == 3, text
    assert_no_noise(text)
    assert harness.remote_bytes("squidGuard") == log.read_bytes()


def test_stall_is_caught_by_the_keepalives(harness: Harness, proxy: FaultProxy) -> None:
    """A silent stall (nothing forwarded), idle or with writes in flight, is caught by the
    SSH keepalives (1 s x 2 here: within 3 s), reported as "stalled", and healed.

    The per-request deadline is set far beyond the wait, so only the keepalives
    can catch it; their bound is asyncssh's arithmetic (docs/shipper.md), not
    something a test on a shared machine can time."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 100))
    proc = harness.start(
        str(log), port=proxy.port, keepalive_interval=1, keepalive_count_max=2, write_timeout=600
    )
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), WAIT, "start")
    for round_, busy in enumerate((False, True)):
        proxy.stall()
        if busy:
            append(log, lines(100, 100))  # in flight when the link goes silent
        harness.wait_for(
            lambda r=round_: len(warned_faults(shipper_log(proc))) > r, WAIT, "detection"
        )
        # The reconnection started meanwhile waits in the stalled proxy; it completes now.
        proxy.resume()
        harness.wait_for(lambda r=round_: restorations(shipper_log(proc)) > r, WAIT, "heal")
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), WAIT, "resume")
    assert harness.stop(proc) == 0
    text = shipper_log(proc)
    assert warned_faults(text) == [Fault.STALLED, Fault.STALLED], text
    assert_no_noise(text)


def test_hung_sftp_server_is_caught_by_the_write_deadline(harness: Harness) -> None:
    """The SFTP server hangs while sshd still answers keepalives: only the per-request
    deadline (write_timeout) can notice ("hung"); the shipper reconnects and catches up."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 100))
    # Keepalives that would catch a silent link within 3 s, and a deadline of 5 s: the
    # fault is "hung" only if sshd kept answering the keepalives while SFTP hung.
    proc = harness.start(str(log), keepalive_interval=1, keepalive_count_max=2, write_timeout=5)
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), WAIT, "start")
    frozen = harness.sshd.freeze_sftp_servers()
    assert frozen, "no SFTP server process found to freeze"
    try:
        append(log, lines(100, 100))
        harness.wait_for(lambda: warned_faults(shipper_log(proc)) != [], WAIT, "the deadline")
        harness.wait_for(
            lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), WAIT, "heal"
        )
    finally:
        harness.sshd.thaw(frozen)
    assert harness.stop(proc) == 0
    text = shipper_log(proc)
    assert warned_faults(text) == [Fault.HUNG], text
    assert "no answer to an SFTP request within 5 s" in text
    assert_no_noise(text)


def test_sshd_restart_with_sessions_killed(harness: Harness) -> None:
    """sshd and its sessions die while lines are written; shipping recovers alone, with one
    warning per change of fault: the link lost (whatever request was in flight), then
    connecting refused, however many attempts are refused."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 1000))
    proc = harness.start(str(log))
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), WAIT, "start")
    harness.sshd.stop()  # the listener first, then the sessions: no reconnect in between
    for i in range(10):
        append(log, lines(1000 + i * 100, 100))
    harness.wait_for(
        lambda: failed_attempts(shipper_log(proc), Fault.REFUSED) >= 3,
        WAIT,
        "three refused connection attempts",
    )
    harness.sshd.start()
    harness.wait_for(
        lambda: (
            restorations(shipper_log(proc)) == 1
            and harness.remote_bytes("squidGuard") == log.read_bytes()
        ),
        WAIT,
        "the link restored and everything shipped",
    )
    assert harness.stop(proc) == 0
    text = shipper_log(proc)
    assert warned_faults(text) == [Fault.LOST, Fault.REFUSED], text
    assert restorations(text) == 1, text
    assert_no_noise(text)


def test_rotation_rename_and_copytruncate_while_shipping(harness: Harness) -> None:
    """Both logrotate styles while lines keep coming: each generation arrives whole."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 10))
    proc = harness.start(str(log), rotate_wait=0.3)
    # Files rotated before the shipper's first start are history it does not ship.
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), WAIT, "start")
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
        harness.wait_for(lambda d=done: harness.remote_bytes("squidGuard") == d, WAIT, "catch-up")
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

    harness.wait_for(lambda: shipped() == generations, WAIT, "all generations")
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
    harness.wait_for(
        lambda: failed_attempts(shipper_log(proc), Fault.REMOTE_REFUSED) >= 2,
        WAIT,
        "two writes refused",
    )
    subprocess.run(["mount", "-o", "remount,size=4m", str(tiny_tmpfs)], check=True)
    harness.wait_for(
        lambda: (
            restorations(shipper_log(proc)) == 1
            and harness.remote_bytes("squidGuard") == log.read_bytes()
        ),
        WAIT,
        "the link restored and everything shipped",
    )
    assert harness.stop(proc) == 0
    text = shipper_log(proc)
    assert warned_faults(text) == [Fault.REMOTE_REFUSED], text
    assert "(monitor disk full, quota, or permissions?)" in text
    assert restorations(text) == 1, text


def test_unknown_host_key_is_refused(harness: Harness) -> None:
    """An empty known_hosts: exit 78, one clear message, nothing written."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 10))
    empty = harness.root / "empty_known_hosts"
    empty.write_text("")
    result = harness.run_once(str(log), known_hosts=empty)
    assert result.returncode == 78
    unknown = r"ERROR: \[fault=host-key\] giving up: the host key of 127\.0\.0\.1:\d+ is unknown"
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
    assert " ERROR: [fault=host-key] giving up: " in result.stderr
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
    assert " ERROR: [fault=auth] giving up: " in result.stderr
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
    assert warned_faults(result.stderr) == [Fault.REFUSED], result.stderr
    assert failed_attempts(result.stderr, Fault.REFUSED) == 4, result.stderr
    assert "is sshd running on the monitor and listening on port" in result.stderr
    assert "[fault=refused] giving up after 5 attempts (--once)" in result.stderr


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
    assert warned_faults(result.stderr) == [Fault.REMOTE_REFUSED], result.stderr
    assert restorations(result.stderr) == 0 and "[link=up]" not in result.stderr

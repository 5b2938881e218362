"""End to end against a real OpenSSH sshd on 127.0.0.1: the remote bytes equal the local ones."""

from __future__ import annotations

import os
import signal
import time

from .harness import Harness, lines


def test_once_ships_complete_lines_byte_exact(harness: Harness) -> None:
    """--once ships every complete line, leaves a partial last line, and resumes exactly."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 1000) + b"partial")
    proc = harness.run_once(str(log))
    assert proc.returncode == 0, proc.stderr
    assert harness.remote_bytes("squidGuard") == lines(0, 1000)
    with open(log, "ab") as fh:
        fh.write(b" line\n" + lines(1000, 10))
    proc = harness.run_once(str(log))
    assert proc.returncode == 0, proc.stderr
    assert harness.remote_bytes("squidGuard") == log.read_bytes()
    [segment] = harness.remote_segments("squidGuard")
    st = log.stat()
    assert segment.name == f"00000001-{st.st_dev:x}-{st.st_ino:x}.log"


def test_follows_several_files_and_reports_status(harness: Harness) -> None:
    """Continuous mode ships two files near real time; SIGUSR1 logs a status line."""
    a, b = harness.logs / "squidGuard.log", harness.logs / "access.log"
    a.write_bytes(b"")
    b.write_bytes(lines(0, 5))
    proc = harness.start(str(a), f"squid={b}")
    written = b""
    for i in range(20):
        chunk = lines(i * 50, 50)
        with open(a, "ab") as fh:
            fh.write(chunk)
        written += chunk
        time.sleep(0.02)
    harness.wait_for(
        lambda: (
            harness.remote_bytes("squidGuard") == written
            and harness.remote_bytes("squid") == b.read_bytes()
        ),
        60,
        "both files shipped",
    )
    # The monitor's disk can hold the bytes before the shipper has read the
    # acknowledgements: ask (SIGUSR1) again until a status line counts them all.
    full = "status: link up; squidGuard: 1000 lines / 150000 bytes shipped, 0 bytes behind"
    asked = [0.0]

    def reported() -> bool:
        if full in proc.log_path.read_text():  # type: ignore[attr-defined]
            return True
        if time.monotonic() - asked[0] >= 0.5:
            proc.send_signal(signal.SIGUSR1)
            asked[0] = time.monotonic()
        return False

    harness.wait_for(reported, 60, "a status line counting everything shipped")
    second = harness.run_once(str(a))  # same state_dir
    assert second.returncode == 74
    assert f"in use by another squidguard-bloom-ship (pid {proc.pid})" in second.stderr
    assert harness.stop(proc) == 0


def test_deleted_file_is_shipped_to_its_end_then_awaited(harness: Harness) -> None:
    """A log deleted while open: its readable rest is shipped, a warning says so, and the
    file that appears later at the same path becomes the next segment."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 100))
    proc = harness.start(str(log), rotate_wait=0.2)
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 60, "start")
    with open(log, "ab") as fh:
        fh.write(lines(100, 50) + b"last words")
        first = log.read_bytes()
        log.unlink()
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == first, 60, "rest shipped")
    log.write_bytes(lines(150, 20))
    harness.wait_for(
        lambda: (
            [p.read_bytes() for p in harness.remote_segments("squidGuard")]
            == [first, log.read_bytes()]
        ),
        15,
        "new file shipped",
    )
    assert harness.stop(proc) == 0
    text = proc.log_path.read_text()  # type: ignore[attr-defined]
    assert "disappeared; shipping what is still readable" in text


def test_segment_deleted_on_the_monitor_is_resent(harness: Harness) -> None:
    """Someone deletes or shortens the live segment on the monitor: the periodic check
    notices, warns, and the local bytes are written again."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 500))
    proc = harness.start(str(log), remote_check_interval=0.3)
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 60, "start")
    [segment] = harness.remote_segments("squidGuard")
    segment.unlink()
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 60, "resend")
    os.truncate(segment, 1000)
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 60, "repair")
    assert harness.stop(proc) == 0
    text = proc.log_path.read_text()  # type: ignore[attr-defined]
    assert "is missing on the monitor" in text and "re-sending the difference" in text


def test_altered_remote_bytes_are_rewritten(harness: Harness) -> None:
    """Before resuming, the bytes before the acknowledged offset are read back: a segment
    altered on the monitor is detected, reported and rewritten with the local bytes."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 500))
    assert harness.run_once(str(log)).returncode == 0
    [segment] = harness.remote_segments("squidGuard")
    with open(segment, "r+b") as fh:
        fh.seek(-1000, os.SEEK_END)
        fh.write(b"X" * 10)
    with open(log, "ab") as fh:
        fh.write(lines(500, 10))
    result = harness.run_once(str(log))
    assert result.returncode == 0, result.stderr
    assert "differs from the local file" in result.stderr and "rewriting" in result.stderr
    assert harness.remote_bytes("squidGuard") == log.read_bytes()


def test_lost_checkpoint_continues_the_monitors_segments(harness: Harness) -> None:
    """Without its checkpoint the shipper continues the live file's segment on the monitor
    (after comparing bytes) and numbers new segments after the monitor's: no second copy."""
    log = harness.logs / "squidGuard.log"
    rotated = harness.logs / "squidGuard.log.1"
    log.write_bytes(lines(0, 300))
    assert harness.run_once(str(log), rotate_wait=0.2).returncode == 0
    os.rename(log, rotated)
    log.write_bytes(lines(300, 300))
    assert harness.run_once(str(log), rotate_wait=0.2).returncode == 0
    assert [p.read_bytes() for p in harness.remote_segments("squidGuard")] == [
        rotated.read_bytes(),
        log.read_bytes(),
    ]
    with open(log, "ab") as fh:
        fh.write(lines(600, 50))
    (harness.state / "checkpoint.json").unlink()
    result = harness.run_once(str(log), rotate_wait=0.2)
    assert result.returncode == 0, result.stderr
    assert "no checkpoint" in result.stderr and "continuing the monitor's" in result.stderr
    segments = harness.remote_segments("squidGuard")
    assert [p.read_bytes() for p in segments] == [rotated.read_bytes(), log.read_bytes()]
    # Lost again, and the live file rotated meanwhile: the new file gets number 3.
    (harness.state / "checkpoint.json").unlink()
    os.rename(log, harness.logs / "squidGuard.log.2")
    log.write_bytes(lines(650, 20))
    assert harness.run_once(str(log), rotate_wait=0.2).returncode == 0
    st = log.stat()
    newest = harness.remote_segments("squidGuard")[-1]
    assert newest.name == f"00000003-{st.st_dev:x}-{st.st_ino:x}.log"
    assert [p.read_bytes() for p in harness.remote_segments("squidGuard")[:2]] == [
        p.read_bytes() for p in segments
    ]
    assert newest.read_bytes() == log.read_bytes()


def test_same_inode_other_content_is_a_new_generation(harness: Harness) -> None:
    """While the shipper is down, the file is rewritten in place with longer, other content
    (same device and inode, as after a copytruncate or an inode reused by a new file): the
    head fingerprint tells them apart, so the new content becomes a new segment and the old
    one stays as it was; then the same with delete and re-create (inode reuse on ext4)."""
    log = harness.logs / "squidGuard.log"
    first = lines(0, 100)
    log.write_bytes(first)
    assert harness.run_once(str(log)).returncode == 0
    ino = log.stat().st_ino
    second = b"rewritten " + lines(1000, 300)
    with open(log, "r+b") as fh:  # same inode, other head, longer than what was shipped
        fh.truncate(0)
        fh.write(second)
    assert log.stat().st_ino == ino
    result = harness.run_once(str(log))
    assert result.returncode == 0, result.stderr
    assert [p.read_bytes() for p in harness.remote_segments("squidGuard")] == [first, second]
    assert "has that inode but other first bytes" in result.stderr
    assert "15000 bytes of it were shipped" in result.stderr
    log.unlink()
    third = b"recreated " + lines(5000, 400)
    log.write_bytes(third)
    reused = log.stat().st_ino == ino
    result = harness.run_once(str(log))
    assert result.returncode == 0, result.stderr
    shipped = [p.read_bytes() for p in harness.remote_segments("squidGuard")]
    assert shipped == [first, second, third], f"inode reused: {reused}"
    assert len({p.name for p in harness.remote_segments("squidGuard")}) == 3

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
        20,
        "both files shipped",
    )
    proc.send_signal(signal.SIGUSR1)
    harness.wait_for(
        lambda: (
            "status: link up; squidGuard: 1000 lines / 150000 bytes shipped"
            in proc.log_path.read_text()
        ),  # type: ignore[attr-defined]
        5,
        "status line",
    )
    assert harness.stop(proc) == 0


def test_deleted_file_is_shipped_to_its_end_then_awaited(harness: Harness) -> None:
    """A log deleted while open: its readable rest is shipped, a warning says so, and the
    file that appears later at the same path becomes the next segment."""
    log = harness.logs / "squidGuard.log"
    log.write_bytes(lines(0, 100))
    proc = harness.start(str(log), rotate_wait=0.2)
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 15, "start")
    with open(log, "ab") as fh:
        fh.write(lines(100, 50) + b"last words")
        first = log.read_bytes()
        log.unlink()
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == first, 15, "rest shipped")
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
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 15, "start")
    [segment] = harness.remote_segments("squidGuard")
    segment.unlink()
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 15, "resend")
    os.truncate(segment, 1000)
    harness.wait_for(lambda: harness.remote_bytes("squidGuard") == log.read_bytes(), 15, "repair")
    assert harness.stop(proc) == 0
    text = proc.log_path.read_text()  # type: ignore[attr-defined]
    assert "is missing on the monitor" in text and "re-sending the difference" in text

"""Helper processes (the installed console script) configured with a shared welcome state."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

COMMAND = str(Path(sys.executable).parent / "squidguard-bloom")
WELCOME = 'OK status=302 url="http://portal.example/welcome?u={url}"'

CONFIG = """\
dbhome {db}
logdir {logs}
dest ads {{
    domainlist ads/domains
    redirect 302:http://block.example/
}}
acl {{
    default {{
        pass !ads all
    }}
}}
welcome {{
    redirect http://portal.example/welcome?u=%u
    state {state}
    capacity 100000
{extra}}}
"""


def write_config(root: Path, name: str, shared: str, extra: str = "") -> Path:
    """A config whose welcome state is shared as the line `shared ...` says;
    each name gets its own local state file (another proxy)."""
    db, logs = root / "db", root / f"logs-{name}"
    (db / "ads").mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    (db / "ads" / "domains").write_text("ads.example\n")
    conf = root / f"{name}.conf"
    conf.write_text(CONFIG.format(db=db, logs=logs, state=root / name / "welcome.bloom",
                                  extra=f"    shared {shared}\n{extra}"))
    return conf


def request(client: str, url: str = "http://www.example.com/") -> bytes:
    return f"{url} {client}/- - GET\n".encode()


class Helper:
    """One helper process on pipes; stderr collected line by line by a thread."""

    def __init__(self, conf: Path) -> None:
        self.proc = subprocess.Popen([COMMAND, "-c", str(conf)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.errors: list[str] = []
        self._buf = b""
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        # The helper serves at once, the fallback answering until its first connection to
        # Redis is made; the tests start from a connected helper (its first state line).
        self.wait_for_log("welcome shared: Redis ")

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.errors.append(raw.decode(errors="replace").rstrip("\n"))

    def ask(self, lines: list[bytes], timeout: float = 30.0) -> list[str]:
        """Send lines as one batch; their replies."""
        self.stdin.write(b"".join(lines))
        self.stdin.flush()
        return self.replies(len(lines), timeout)

    def replies(self, count: int, timeout: float = 30.0) -> list[str]:
        """The next count reply lines (read straight from the pipe, unbuffered)."""
        fd = self.stdout.fileno()
        deadline = time.monotonic() + timeout
        while self._buf.count(b"\n") < count:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            assert ready, f"not {count} replies within {timeout} s: {self._buf[-300:]!r}"
            chunk = os.read(fd, 1 << 16)
            assert chunk, f"the helper exited: {self.errors}"
            self._buf += chunk
        lines = self._buf.split(b"\n", count)
        self._buf = lines.pop()
        return [x.decode() for x in lines]

    def wait_for_log(self, text: str, timeout: float = 30.0, count: int = 1) -> None:
        """Until `count` stderr lines contain text."""
        deadline = time.monotonic() + timeout
        while sum(text in e for e in self.errors) < count:
            assert time.monotonic() < deadline, \
                f"no {text!r} in the helper's log within {timeout} s: {self.errors}"
            time.sleep(0.05)

    def stop(self) -> None:
        """Close stdin (Squid's way); kill if it does not exit."""
        if self.proc.poll() is None:
            self.stdin.close()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)

    def pid(self) -> int:
        return self.proc.pid


def feed(helper: Helper, lines: list[bytes], batch: int, out: list[str],
         pause: float = 0.0) -> threading.Thread:
    """A thread sending lines in batches of `batch` (each answered before the next),
    appending the replies to out."""
    def run() -> None:
        for i in range(0, len(lines), batch):
            out.extend(helper.ask(lines[i : i + batch]))
            if pause:
                time.sleep(pause)

    t = threading.Thread(target=run)
    t.start()
    return t



"""The dashboard tests' world: shipped-log directories, a real ingest, a real serve, a client.

Everything is a real process on 127.0.0.1 (free ports, temp dirs), stopped by PID.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port

SEGMENT = "00000001-1-1.log"


def monitor(*args: str, db: str, stdin: str | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    """Run squidguard-bloom-monitor to completion."""
    return subprocess.run([sys.executable, "-m", "squidguard_bloom.monitor", "--db", db, *args],
                          input=stdin, capture_output=True, text=True, timeout=timeout,
                          check=False)


def stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


class ProxyLogs:
    """One proxy's directory as the shipper lays it out: <root>/<name>/<stream>/<segment>."""

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)

    def write(self, stream: str, text: str) -> None:
        d = self.dir / stream
        d.mkdir(exist_ok=True)
        with open(d / SEGMENT, "ab") as fh:
            fh.write(text.encode("utf-8"))

    def access(self, ts: float, url: str, *, client: str = "10.0.0.1", user: str = "-",
               result: str = "TCP_MISS", status: int = 200, size: int = 1000,
               method: str = "GET") -> None:
        hier = "HIER_NONE/-" if "HIT" in result else "HIER_DIRECT/192.0.2.1"
        self.write("access", f"{ts:.3f}     12 {client} {result}/{status:03d} {size} {method} "
                   f"{url} {user} {hier} text/html\n")

    def decision(self, ts: float, url: str, *, client: str = "10.0.0.1", user: str = "-",
                 target: str = "ads", action: str = "REDIRECT", stream: str = "blocked",
                 method: str = "GET") -> None:
        self.write(stream, f"{stamp(ts)} [4242] Request(default/{target}/-) {url} {client}/- "
                   f"{user} {method} {action}\n")

    def helper(self, ts: float, message: str, level: str = "INFO") -> None:
        self.write("squidGuard", f"{stamp(ts)} [4242] {level}: {message}\n")


class Process:
    """A background squidguard-bloom-monitor process with its output in a file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "squidguard_bloom.monitor",
                                          *args], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def wait_port(port: int, proc: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise AssertionError(f"exited with {proc.proc.returncode}:\n{proc.output()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing on 127.0.0.1:{port} after {timeout} s:\n{proc.output()}")


@dataclass
class Served:
    """A running dashboard and the user that may log in."""

    url: str
    db: str
    user: str
    password: str
    process: Process


def start_serve(db: str, workdir: Path, user: str = "admin",
                password: str = "correct horse battery") -> Served:
    out = monitor("createuser", user, "--password-stdin", db=db, stdin=password + "\n")
    assert out.returncode == 0, out.stderr
    port = free_port()
    proc = Process(["--db", db, "serve", "--port", str(port), "--poll-interval", "0.1"],
                   workdir / f"serve-{port}.log")
    wait_port(port, proc)
    return Served(f"http://127.0.0.1:{port}", db, user, password, proc)


def start_ingest(db: str, root: Path, workdir: Path) -> Process:
    return Process(["--db", db, "ingest", "--root", str(root), "--poll-interval", "0.1"],
                   workdir / "ingest.log")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Client:
    """A cookie-keeping HTTP client that does not follow redirects (to see them)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, path: str, data: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")

    def login_form_token(self) -> str:
        status, _h, page = self.request("/login")
        assert status == 200
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        assert m is not None
        return m.group(1)

    def login(self, user: str, password: str) -> tuple[int, dict[str, str], str]:
        token = self.login_form_token()
        return self.request("/login", {"csrf": token, "user": user, "password": password})

    def page_csrf(self) -> str:
        status, _h, page = self.request("/")
        assert status == 200, status
        m = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
        assert m is not None
        return m.group(1)

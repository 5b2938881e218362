"""Real Squid 5.7 on 127.0.0.1 for end-to-end tests: install, origin, squid, curl.

Everything runs on loopback with temporary directories and free ports, and
is stopped by PID (process group) at teardown.  A missing binary fails with
the command that installs it, never a silent skip.
"""

from __future__ import annotations

import http.server
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUP_HINT = "run ./setup.sh test (it installs squid, curl and the helper's system venv)"


def need(binary: str) -> str:
    """Absolute path of binary, or a failure naming the setup command."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        raise AssertionError(f"{binary} is not installed: {SETUP_HINT}")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Block until 127.0.0.1:port accepts, or fail (early if proc died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def proxy_dir(prefix: str) -> Path:
    """A world-readable temp dir owned by Squid's user 'proxy'."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    proxy = pwd.getpwnam("proxy")
    os.chown(path, proxy.pw_uid, proxy.pw_gid)
    path.chmod(0o755)
    return path


def chown_tree(path: Path, user: str = "proxy") -> None:
    """Give a tree to user (Squid and its helpers run as proxy)."""
    pw = pwd.getpwnam(user)
    for dirpath, _dirs, files in os.walk(path):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for name in files:
            os.chown(os.path.join(dirpath, name), pw.pw_uid, pw.pw_gid)


def system_install(prefix: Path) -> Path:
    """Install the helper as an admin would (./setup.sh system-install) under prefix."""
    env = dict(os.environ, PREFIX=str(prefix), BINDIR=str(prefix / "bin"))
    result = subprocess.run(["bash", str(ROOT / "setup.sh"), "system-install"], env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, f"system-install failed:\n{result.stdout}\n{result.stderr}"
    script = prefix / "bin" / "squidguard-bloom"
    assert script.exists(), "system-install did not create the squidguard-bloom command"
    return script


class _Origin(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"origin {self.headers.get('Host')} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def origin_server() -> Iterator[int]:
    """A tiny HTTP origin on 127.0.0.1 answering 200 for any host and path."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


SQUID_CONF = """\
http_port 127.0.0.1:{port}
pid_filename {dir}/squid.pid
cache_log {dir}/cache.log
access_log stdio:{dir}/access.log
cache_store_log none
coredump_dir {dir}
hosts_file {dir}/hosts
dns_nameservers 127.0.0.1
cache deny all
cache_mem 8 MB
acl clients src 127.0.0.0/8
acl SSL_ports port 443
http_access allow clients
http_access deny all
url_rewrite_program {helper} -c {sgconf}
url_rewrite_children {children} startup={children} idle=1 concurrency={concurrency}
url_rewrite_timeout 20 seconds on_timeout=fail
shutdown_lifetime 1 seconds
visible_hostname sgb-test
pinger_enable off
netdb_filename none
logfile_rotate 0
"""


@dataclass
class Squid:
    """A running Squid with our helper."""

    proc: subprocess.Popen
    port: int
    dir: Path
    conf: Path

    def reconfigure(self) -> None:
        """squid -k reconfigure: Squid restarts every helper."""
        subprocess.run([need("squid"), "-k", "reconfigure", "-f", str(self.conf)], check=True,
                       capture_output=True, timeout=30)

    def cache_log(self) -> str:
        """cache.log so far (helpers' stderr lands here)."""
        path = self.dir / "cache.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def helper_pids(self) -> set[int]:
        """PIDs of running (non-zombie) helper processes owned by this Squid."""
        pids = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after ")"
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == self.proc.pid and state != "Z" and "squidguard-bloom" in cmdline:
                pids.add(int(entry.name))
        return pids

    def stop(self) -> None:
        """Stop Squid and its helpers by process group; escalate to SIGKILL."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@contextmanager
def run_squid(workdir: Path, helper: Path, sgconf: Path, hosts: list[str], children: int = 3,
              concurrency: int = 0) -> Iterator[Squid]:
    """Start squid -N with our helper on a free 127.0.0.1 port; stop it afterwards."""
    squid_bin = need("squid")
    port = free_port()
    (workdir / "hosts").write_text("127.0.0.1 " + " ".join(hosts) + "\n")
    conf = workdir / "squid.conf"
    conf.write_text(SQUID_CONF.format(port=port, dir=workdir, helper=helper, sgconf=sgconf,
                                      children=children, concurrency=concurrency))
    chown_tree(workdir)
    proc = subprocess.Popen([squid_bin, "-N", "-f", str(conf)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(workdir / "squid.out", "wb"),  # noqa: SIM115
                            start_new_session=True)
    squid = Squid(proc, port, workdir, conf)
    try:
        wait_for_port(port, 30, proc)
        yield squid
    finally:
        squid.stop()


@dataclass
class Fetch:
    """What curl saw."""

    code: int
    location: str
    exit: int
    error: str
    seconds: float
    body: str


def fetch(proxy_port: int, url: str, client: str, *, method: str = "GET",
          timeout: float = 15) -> Fetch:
    """curl url through the proxy from client address (127.x.y.z), not following redirects."""
    cmd = [need("curl"), "-s", "-S", "-o", "-", "-w", "\n%{http_code} %{redirect_url}",
           "--interface", client, "-x", f"http://127.0.0.1:{proxy_port}",
           "--max-time", str(timeout), "--noproxy", ""]
    if method == "CONNECT":
        cmd += ["-p", "-k"]
    elif method != "GET":
        cmd += ["-X", method]
    if method == "HEAD":
        cmd = [c for c in cmd if c != "-X"] + ["-I"]
        cmd.remove("HEAD")
    start = time.monotonic()
    r = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=timeout + 10,
                       check=False)
    seconds = time.monotonic() - start
    body, _, tail = r.stdout.rpartition("\n")
    code, _, location = tail.partition(" ")
    return Fetch(int(code or 0), location.strip(), r.returncode, r.stderr.strip(), seconds, body)

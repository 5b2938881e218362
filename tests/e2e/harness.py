"""Real Squid 5.7 on 127.0.0.1 for end-to-end tests: install, origin, squid, curl.

Everything runs on loopback with temporary directories and free ports, and
is stopped by PID (process group) at teardown.  A missing binary fails with
the command that installs it, never a silent skip.
"""

from __future__ import annotations

import http.server
import os
import pwd
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import Server, free_port, need, proc_stat

ROOT = Path(__file__).resolve().parents[2]
CURL_TIMED_OUT = 28  # curl's exit status when --max-time runs out


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


def system_install(prefix: Path, extras: str = "") -> Path:
    """Install the helper as an admin would (./setup.sh system-install) under prefix,
    with the optional dependencies named in extras (e.g. "redis")."""
    env = dict(os.environ, PREFIX=str(prefix), BINDIR=str(prefix / "bin"), EXTRAS=extras)
    result = subprocess.run(["bash", str(ROOT / "setup.sh"), "system-install"], env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, f"system-install failed:\n{result.stdout}\n{result.stderr}"
    script = prefix / "bin" / "squidguard-bloom"
    assert script.exists(), "system-install did not create the squidguard-bloom command"
    return script


class _Origin(http.server.BaseHTTPRequestHandler):
    def _answer(self, send_body: bool = True) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = self.rfile.read(length) if length else b""
        body = f"origin {self.command} {self.headers.get('Host')} {self.path} {len(received)}\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def log_message(self, *_args: object) -> None:
        pass


class _OriginServer(http.server.ThreadingHTTPServer):
    # socketserver's listen backlog of 5 drops SYNs when Squid opens many
    # connections at once; the retransmits then stall requests for seconds.
    request_queue_size = 512
    daemon_threads = True


@contextmanager
def origin_server() -> Iterator[int]:
    """A tiny HTTP origin on 127.0.0.1 answering 200 to GET, HEAD and POST for any host.

    The body, "origin METHOD HOST PATH BODY-LENGTH", proves the request got through.
    """
    server = _OriginServer(("127.0.0.1", 0), _Origin)
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
{rewrite}shutdown_lifetime 1 seconds
visible_hostname sgb-test
pinger_enable off
netdb_filename none
logfile_rotate 0
"""


def process_uid(pid: int) -> int:
    """Real user id of a running process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


def process_cmdline(pid: int) -> list[str]:
    """argv of a running process (Squid rewrites argv[0] of its helpers to '(name)')."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


REWRITE_CONF = """\
url_rewrite_program {helper} -c {sgconf}
url_rewrite_children {children} startup={children} idle=1 concurrency={concurrency}
url_rewrite_timeout 20 seconds on_timeout=fail
"""


@dataclass
class Squid:
    """A running Squid with our helper.

    Squid -N makes every helper a session leader, so stopping Squid's process
    group does not reach them: every helper PID seen is remembered (with its
    start time, against PID reuse) and stopped by PID at the end.
    """

    server: Server
    port: int
    dir: Path
    conf: Path
    seen_helpers: dict[int, int] = field(default_factory=dict)

    def reconfigure(self) -> None:
        """squid -k reconfigure: Squid restarts every helper."""
        subprocess.run([need("squid"), "-k", "reconfigure", "-f", str(self.conf)], check=True,
                       capture_output=True, timeout=30)

    def cache_log(self) -> str:
        """cache.log so far (helpers' stderr lands here)."""
        path = self.dir / "cache.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[str]:
        """access.log lines so far (Squid's native format: time elapsed client code/status ...)."""
        path = self.dir / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def helper_pids(self) -> set[int]:
        """PIDs of running (non-zombie) helper processes owned by this Squid."""
        pids = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            stat = proc_stat(int(entry.name))
            if stat is None or stat[1] != self.server.pid or stat[0] == "Z":
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"squidguard-bloom" in cmdline:
                pids.add(int(entry.name))
                self.seen_helpers[int(entry.name)] = stat[2]
        return pids

    def wait_for_helpers(self, count: int, timeout: float = 60,
                         exclude: frozenset[int] = frozenset()) -> set[int]:
        """Block until at least count helpers run, none of them in exclude; return their PIDs."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.helper_pids()
            if len(pids) >= count and not pids & exclude:
                return pids
            if time.monotonic() > deadline:
                raise AssertionError(f"wanted {count} helpers not in {sorted(exclude)}, have "
                                     f"{sorted(pids)}; cache.log ends:\n{self.cache_log()[-2000:]}")
            time.sleep(0.1)

    def _live_helpers(self) -> list[int]:
        live = []
        for pid, started in self.seen_helpers.items():
            stat = proc_stat(pid)
            if stat is not None and stat[2] == started and stat[0] != "Z":
                live.append(pid)
        return live

    def stop(self) -> None:
        """Stop Squid by process group, then every helper it ran by PID; escalate to SIGKILL."""
        if self.server.running():
            self.helper_pids()
        self.server.stop()
        # Helpers exit on EOF once Squid is gone; whatever lingers is signalled.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self._wait_helpers_gone(3):
                for pid in self._live_helpers():
                    with suppress(ProcessLookupError):
                        os.kill(pid, sig)
        if not self._wait_helpers_gone(3):
            raise AssertionError(f"helpers {self._live_helpers()} survived SIGKILL")

    def _wait_helpers_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._live_helpers():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


@contextmanager
def run_squid(workdir: Path, helper: Path, sgconf: Path, hosts: list[str], children: int = 3,
              concurrency: int = 0, rewrite: str = REWRITE_CONF) -> Iterator[Squid]:
    """Start squid -N with our helper on a free 127.0.0.1 port; stop it afterwards.

    Squid resolves every name in hosts to 127.0.0.1 through its own hosts_file.
    rewrite holds the url_rewrite_* lines (formatted with helper, sgconf,
    children and concurrency).
    """
    squid_bin = need("squid")
    port = free_port()
    (workdir / "hosts").write_text("127.0.0.1 " + " ".join(hosts) + "\n")
    conf = workdir / "squid.conf"
    lines = rewrite.format(helper=helper, sgconf=sgconf, children=children,
                           concurrency=concurrency)
    conf.write_text(SQUID_CONF.format(port=port, dir=workdir, rewrite=lines))
    chown_tree(workdir)
    server = Server([squid_bin, "-N", "-f", str(conf)], port, workdir / "squid.out")
    squid = Squid(server, port, workdir, conf)
    try:
        server.start()
        yield squid
    finally:
        squid.stop()


@dataclass
class Fetch:
    """What curl saw: final status, the CONNECT answer (tunnels), Location, exit code.

    No duration: whether an answer came "at once" is told by ``exit`` (curl's
    28 is its own --max-time running out), never by a clock on a shared machine.
    """

    code: int
    connect_code: int
    location: str
    exit: int
    error: str
    body: str

    @property
    def timed_out(self) -> bool:
        """curl gave up waiting (its --max-time ran out): nobody answered."""
        return self.exit == CURL_TIMED_OUT


def fetch(proxy_port: int, url: str, client: str, *, method: str = "GET",
          data: str | None = None, timeout: float = 15) -> Fetch:
    """curl url through the proxy from client address (127.x.y.z), not following redirects.

    method CONNECT tunnels through the proxy (curl -p) whatever the URL's scheme.
    """
    cmd = [need("curl"), "-s", "-S", "-o", "-",
           "-w", "\n%{http_code} %{http_connect} %{redirect_url}",
           "--interface", client, "-x", f"http://127.0.0.1:{proxy_port}",
           "--max-time", str(timeout), "--noproxy", ""]
    if method == "CONNECT":
        cmd += ["-p", "-k"]
    elif method == "HEAD":
        cmd += ["-I"]
    elif method != "GET":
        cmd += ["-X", method]
    if data is not None:
        cmd += ["--data-binary", data]
    r = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=timeout + 10,
                       check=False)
    body, _, tail = r.stdout.rpartition("\n")
    code, connect_code, location = [*tail.split(" ", 2), "", ""][:3]
    return Fetch(int(code or 0), int(connect_code or 0), location.strip(), r.returncode,
                 r.stderr.strip(), body)


def fetch_many(proxy_port: int, urls: list[str], client: str, *, parallel: bool = False,
               timeout: float = 30) -> list[tuple[str, int, str]]:
    """GET urls from client with one curl: (url, status, Location) per URL, bodies dropped.

    In turn over one kept-alive connection, or with parallel all at once on
    separate connections (as a browser opens a page), in order of completion.
    """
    cmd = [need("curl"), "-s", "-S"]
    if parallel:
        cmd += ["-Z", "--parallel-immediate", "--parallel-max", "50"]
    cmd += ["-w", "%{url_effective} %{http_code} %{redirect_url}\n",
           "--interface", client, "-x", f"http://127.0.0.1:{proxy_port}",
           "--max-time", str(timeout), "--noproxy", ""]
    for url in urls:
        cmd += ["-o", "/dev/null", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10, check=False)
    assert r.returncode == 0, f"curl from {client} failed ({r.returncode}): {r.stderr}"
    answers = []
    for line in r.stdout.splitlines():
        url, code, location = [*line.split(" ", 2), ""][:3]
        answers.append((url, int(code), location.strip()))
    return answers

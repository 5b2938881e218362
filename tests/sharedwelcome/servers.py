"""Real redis-server processes for the shared-welcome tests (and bench/redis_welcome.py).

Each server listens on 127.0.0.1 at a free port with its files in a temp
dir, and runs through the suite's one executor (:class:`tests.servers.Server`):
started in its own process group, waited for until its port accepts, stopped
by PID with escalation.  A missing binary fails naming the setup command.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from tests.servers import Server
from tests.servers import need as _need

SETUP_HINT = "run ./setup.sh test (it installs redis-server and redis-tools)"


def need(binary: str) -> str:
    """Absolute path of binary, or a failure naming the setup command."""
    return _need(binary, SETUP_HINT)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (nor at port + 10000,
    which a cluster node uses for its bus)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def ping(port: int, timeout: float = 0.5) -> bytes:
    """The first reply line to PING on 127.0.0.1:port (b'' when nothing answers)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(100).split(b"\r\n", 1)[0]
    except OSError:
        return b""


class RedisServer:
    """One redis-server on 127.0.0.1; restartable on the same port and directory."""

    def __init__(self, workdir: Path, *extra: str, port: int | None = None,
                 tls: bool = False) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra = list(extra)
        self.tls = tls
        self.server: Server | None = None
        if tls:
            self._make_certificates()
        self.start()

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0 (rediss://…?ssl_ca_certs=CA with TLS)"""
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.dir / 'ca.crt'}"
        return f"redis://127.0.0.1:{self.port}/0"

    def _make_certificates(self) -> None:
        """A throw-away CA and a server certificate for 127.0.0.1 (openssl)."""
        d = self.dir
        openssl = need("openssl")
        steps = [
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "2", "-subj", "/CN=sgb-test-ca"],
            [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=127.0.0.1"],
            [openssl, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext"],
        ]
        (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        for cmd in steps:
            subprocess.run(cmd, cwd=d, capture_output=True, timeout=60, check=True)

    def _ready(self) -> bool:
        if not self.tls:
            return ping(self.port) in (b"+PONG", b"-NOAUTH Authentication required.")
        ctx = ssl.create_default_context(cafile=str(self.dir / "ca.crt"))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw, \
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"PING\r\n")
                return s.recv(100).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        """Start (again) and wait until it answers PING."""
        ports = ["--port", str(self.port)]
        if self.tls:
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file",
                     str(self.dir / "server.crt"), "--tls-key-file", str(self.dir / "server.key"),
                     "--tls-ca-cert-file", str(self.dir / "ca.crt"), "--tls-auth-clients", "no"]
        args = [need("redis-server"), "--bind", "127.0.0.1", *ports,
                "--dir", str(self.dir), "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--logfile", str(self.dir / "redis.log"), *self.extra]
        self.server = Server(args, self.port, self.dir / "redis.out", timeout=20)
        self.server.start()
        # The port accepts a moment before the server answers commands (loading).
        deadline = time.monotonic() + 20
        while not self._ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server on port {self.port} did not answer PING:\n"
                                     f"{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self) -> str:
        """The end of redis-server's own log."""
        log = self.dir / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def cli(self, *args: str, password: str | None = None) -> str:
        """redis-cli's output for one command."""
        cmd = [need("redis-cli"), "-h", "127.0.0.1", "-p", str(self.port)]
        if password is not None:
            cmd += ["--no-auth-warning", "-a", password]
        out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=30,
                             check=True)
        return out.stdout.strip()

    def signal(self, sig: int) -> None:
        """Send sig to the server (SIGSTOP / SIGCONT to stall it)."""
        assert self.server is not None
        os.kill(self.server.pid, sig)

    def kill(self) -> None:
        """SIGKILL and wait (its data is gone: no persistence)."""
        if self.server is not None and self.server.running():
            os.kill(self.server.pid, signal.SIGCONT)
            self.server.kill()

    def stop(self) -> None:
        """Stop it by PID (SIGCONT first, in case it was stalled)."""
        if self.server is not None and self.server.running():
            os.kill(self.server.pid, signal.SIGCONT)
        if self.server is not None:
            self.server.stop()


class RedisCluster:
    """Three masters on 127.0.0.1, joined with redis-cli --cluster create."""

    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.nodes: list[RedisServer] = []
        try:
            for i in range(masters):
                d = workdir / f"node{i}"
                d.mkdir(parents=True, exist_ok=True)
                port = free_port()
                self.nodes.append(RedisServer(
                    d, "--cluster-enabled", "yes", "--cluster-config-file",
                    str(d / "nodes.conf"), "--cluster-node-timeout", "2000", port=port))
            addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
            subprocess.run([need("redis-cli"), "--cluster", "create", *addrs,
                            "--cluster-replicas", "0", "--cluster-yes"],
                           capture_output=True, text=True, timeout=60, check=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                states = [n.cli("CLUSTER", "INFO") for n in self.nodes]
                if all("cluster_state:ok" in s for s in states):
                    return
                time.sleep(0.1)
            raise AssertionError("the cluster did not reach cluster_state:ok")
        except BaseException:
            self.stop()
            raise

    @property
    def urls(self) -> list[str]:
        """redis://127.0.0.1:PORT of each node."""
        return [f"redis://127.0.0.1:{n.port}" for n in self.nodes]

    def stop(self) -> None:
        """Stop every node by PID."""
        for n in self.nodes:
            n.stop()

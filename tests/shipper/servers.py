"""The shipper tests' servers: a private OpenSSH sshd and a fault-injecting TCP proxy.

Both listen on 127.0.0.1 only, on free ports; sshd runs through the suite's one
executor (tests/servers.py), which stops it by PID.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.servers import Server, children_of, free_port

SSHD = Path("/usr/sbin/sshd")
SETUP_HINT = "run `./setup.sh test` (installs openssh-server and openssh-client)"


def keygen(path: Path) -> str:
    """Create an unencrypted ed25519 key at ``path``; return the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
    )
    return path.with_name(path.name + ".pub").read_text().strip()


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` (R, S, T, Z, ...), or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def freeze_tree(root: int, timeout: float = 10.0) -> list[int]:
    """SIGSTOP ``root`` and all its descendants; return their PIDs, root first.

    Each process is seen stopped before its children are listed, and a stopped
    process cannot fork: no process of the tree can escape the list.
    """
    frozen: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while (state := process_state(pid)) not in (None, "T", "t", "Z", "X"):
            if time.monotonic() > deadline:
                raise AssertionError(f"process {pid} did not stop (state {state})")
            time.sleep(0.005)
        if state is None:
            continue
        frozen.append(pid)
        todo.extend(children_of(pid))
    return frozen


class Sshd:
    """A private sshd: own host key, own authorized_keys, temp dir, free port."""

    def __init__(self, root: Path, extra_config: str = "", *, start: bool = True) -> None:
        if not SSHD.exists() or shutil.which("ssh-keygen") is None:
            pytest.fail(f"OpenSSH server not installed ({SSHD} missing): {SETUP_HINT}")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key = root / "host_ed25519"
        host_pub = keygen(self.host_key)
        self.client_key = root / "client_ed25519"
        client_pub = keygen(self.client_key)
        self.authorized_keys = root / "authorized_keys"
        self.authorized_keys.write_text(client_pub + "\n")
        self.known_hosts = root / "known_hosts"
        self.host_pub = host_pub.rsplit(" ", 1)[0]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {self.host_pub}\n")
        self.data = root / "data"
        self.data.mkdir(exist_ok=True)
        self.log = root / "sshd.log"
        self.config = root / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\n"
            "MaxStartups 100:30:200\n"
            "LogLevel VERBOSE\n"
            "Subsystem sftp internal-sftp\n" + extra_config
        )
        self.server = Server([str(SSHD), "-D", "-e", "-f", str(self.config)], self.port, self.log,
                             timeout=10)
        if start:
            self.start()

    def trust_port(self, port: int) -> None:
        """Also trust this host key on ``port`` (a proxy in front of sshd)."""
        with open(self.known_hosts, "a") as fh:
            fh.write(f"[127.0.0.1]:{port} {self.host_pub}\n")

    def start(self) -> None:
        """Start sshd (again, after a stop) and wait until it accepts connections."""
        self.server.start()

    def freeze_sftp_servers(self) -> list[int]:
        """SIGSTOP the SFTP server processes of open sessions; sshd keeps answering keepalives."""
        frozen = []
        if self.server.running():
            for session in children_of(self.server.pid):
                for pid in children_of(session):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGSTOP)
                        frozen.append(pid)
        return frozen

    def thaw(self, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self, *, sessions: bool = True) -> None:
        """Stop sshd; with ``sessions``, its open sessions die with it, as in a crash.

        The listener and its sessions are frozen first, so no client can start
        a new session meanwhile; the listener dies first (its port closes), then
        the sessions: a client sees its link lost, then every later attempt
        refused, in that order.
        """
        if sessions and self.server.running():
            _listener, *sessions_left = freeze_tree(self.server.pid)
            self.server.kill()  # the listener: its port is closed once this returns
            for pid in sessions_left:  # sshd re-execs them: the executor may not know them
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return
        self.server.stop()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 that can stall (stop forwarding) or cut (RST) its connections."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.closed = False
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), 5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.forwarding.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def stall(self) -> None:
        """Stop forwarding in both directions; connections stay open, silent."""
        self.forwarding.clear()

    def resume(self) -> None:
        self.forwarding.set()

    def cut(self) -> None:
        """Reset every connection (RST), as when a link drops."""
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self.resume()
        self.cut()

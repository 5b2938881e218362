"""A private PostgreSQL server for the monitor's tests and benchmark.

Debian's PostgreSQL binaries (``./setup.sh test`` installs them), ``initdb`` in
a temporary directory, ``postgres`` on 127.0.0.1 on a free port with its socket
in that directory, run by the suite's one executor (tests/servers.py: mirakuru's
TCPExecutor underneath) and stopped by PID. As
root, both run as the ``postgres`` user (PostgreSQL refuses root) through
``setpriv``, which execs in place, so the PID mirakuru holds is the server's.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.servers import Server, free_port

SETUP_HINT = "run `./setup.sh test` (installs Debian's postgresql)"


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL bin directory, else the one on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


class PostgresServer:
    """initdb + postgres in a temp dir on 127.0.0.1; ``url(db)`` for a database in it."""

    def __init__(self, *, durable: bool = False) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError(f"PostgreSQL is not installed: {SETUP_HINT}")
        self.tmp = Path(tempfile.mkdtemp(prefix="sgb-pg-"))
        self.data = self.tmp / "data"
        self.port = free_port()
        prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.tmp, user.pw_uid, user.pw_gid)
            prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                      "--clear-groups", "--"]
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                       check=True, capture_output=True, timeout=120)
        settings = ["-c", "listen_addresses=127.0.0.1", "-c", f"port={self.port}",
                    "-c", f"unix_socket_directories={self.tmp}", "-c", "max_connections=50"]
        if not durable:  # tests: the server itself is never crashed, only its clients
            settings += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        self.server = Server([*prefix, str(bindir / "postgres"), "-D", str(self.data), *settings],
                             self.port, self.tmp / "server.log", timeout=60)
        self.server.start()
        self._count = 0

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        import psycopg

        self._count += 1
        name = f"t{self._count}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self.server.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

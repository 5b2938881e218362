"""The SSH link to the monitor: one asyncssh connection, one SFTP session, positional writes.

Every remote file is opened WRITE|CREAT (never APPEND, never TRUNC) and every
write names its offset, so writing the same bytes at the same offset again is
harmless. A silent stall is caught by SSH keepalives (``keepalive_interval`` x
``keepalive_count_max``) and a hung SFTP server, whose sshd still answers
keepalives, by a deadline on every request (``write_timeout``). Every failure
is turned into a ``ShipError`` subclass that says whether retrying can help,
with its ``Fault`` kind: a request that fails because the connection ended
reports why the connection ended (reset, keepalives unanswered), whichever
request happened to be in flight.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import re
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncssh

from squidguard_bloom.shipper.errors import (
    AuthError,
    HostKeyError,
    LinkError,
    RemoteWriteError,
    ShipConfigError,
)
from squidguard_bloom.shipper.faults import Fault

log = logging.getLogger("squidguard_bloom.shipper")
T = TypeVar("T")


@dataclass(frozen=True)
class LinkSettings:
    """Where and how to reach the monitor."""

    host: str
    user: str
    key: Path
    known_hosts: Path
    port: int = 22
    remote_dir: str = "incoming"
    keepalive_interval: float = 15.0
    keepalive_count_max: int = 3
    connect_timeout: float = 30.0
    write_timeout: float = 60.0

    @property
    def target(self) -> str:
        """``user@host:port`` for messages."""
        return f"{self.user}@{self.host}:{self.port}"

    def stall_bound(self) -> float:
        """Longest time a silently stalled link goes unnoticed, in seconds (keepalives).

        A request still waiting for its answer is abandoned sooner when
        ``write_timeout`` is shorter; a hung SFTP server behind a live sshd is
        caught by ``write_timeout`` alone.
        """
        return self.keepalive_interval * (self.keepalive_count_max + 1)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _connect_fault(exc: BaseException, settings: LinkSettings) -> tuple[Fault, str | None]:
    """The kind of a failed connection attempt, and what to check."""
    if isinstance(exc, socket.gaierror):
        return Fault.UNRESOLVED, f"cannot resolve {settings.host}: check 'host' and the proxy's DNS"
    if isinstance(exc, ConnectionRefusedError):
        return (
            Fault.REFUSED,
            f"is sshd running on the monitor and listening on port {settings.port}?",
        )
    if isinstance(exc, TimeoutError):
        return Fault.CONNECT_TIMEOUT, (
            f"no SSH handshake within connect_timeout ({settings.connect_timeout:g} s): "
            "a firewall dropping the packets, or the monitor overloaded?"
        )
    if isinstance(exc, asyncssh.ChannelOpenError):
        return (
            Fault.NO_SFTP,
            "the monitor refused the SFTP subsystem: check its sshd_config (docs/shipper.md)",
        )
    return Fault.CONNECT_FAILED, None


def _ended_fault(cause: BaseException) -> Fault:
    """``STALLED`` when asyncssh ended the connection for unanswered keepalives, else ``LOST``.

    asyncssh says so only in the reason of its ``ConnectionLost`` ("Server not
    responding to keepalive"); should that wording change, the fault is
    reported as ``LOST``, which is still true.
    """
    if isinstance(cause, asyncssh.ConnectionLost) and "keepalive" in str(cause.reason).lower():
        return Fault.STALLED
    return Fault.LOST


def known_hosts_text(text: str, port: int) -> str:
    """known_hosts content with ``[host]:22`` patterns also written as plain ``host``.

    OpenSSH (and asyncssh) look up a server on port 22 by its bare name only;
    an entry written ``[monitor]:22 ...`` by hand would never match and every
    connection would fail as "unknown host key".
    """
    if port != 22:
        return text
    out = []
    for line in text.splitlines():
        fields = line.split(" ")
        at = 1 if line.startswith("@") else 0  # @revoked / @cert-authority marker first
        if len(fields) > at + 1 and not line.startswith("#"):
            pats = fields[at].split(",")
            fields[at] = ",".join(_PORT22.sub(r"\1", pat) for pat in pats)
        out.append(" ".join(fields))
    return "\n".join(out) + "\n"


_PORT22 = re.compile(r"^\[([^\]]+)\]:22$")


class _Watcher(asyncssh.SSHClient):
    """Remembers why the connection ended (keepalive timeout, reset, server shutdown)."""

    def __init__(self) -> None:
        self.lost: Exception | None = None
        self.closed = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc


class Link:
    """One connection to the monitor; discard it after any error and make a new one."""

    def __init__(self, settings: LinkSettings) -> None:
        self.settings = settings
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._files: dict[str, asyncssh.SFTPClientFile] = {}
        self._dirs: set[str] = set()
        self._watcher = _Watcher()

    def _load_credentials(self) -> tuple[asyncssh.SSHKey, asyncssh.SSHKnownHosts]:
        s = self.settings
        try:
            key = asyncssh.read_private_key(s.key)
        except (OSError, asyncssh.KeyImportError) as exc:
            raise ShipConfigError(
                f"cannot use the private key {s.key}: {_describe(exc)}; it must be a readable, "
                "unencrypted OpenSSH key (no passphrase), mode 0600"
            ) from exc
        try:
            text = Path(s.known_hosts).read_text()
            known = asyncssh.import_known_hosts(known_hosts_text(text, s.port))
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise ShipConfigError(
                f"cannot read known_hosts {s.known_hosts}: {_describe(exc)}; it must list the "
                f"monitor's host key as '{self.host_pattern} <type> <key>'"
            ) from exc
        return key, known

    @property
    def host_pattern(self) -> str:
        """How known_hosts names the monitor: ``host`` on port 22, else ``[host]:port``."""
        s = self.settings
        return s.host if s.port == 22 else f"[{s.host}]:{s.port}"

    async def connect(self) -> None:
        """Connect, authenticate by key and start SFTP; raise a ``ShipError`` on failure."""
        s = self.settings
        key, known = self._load_credentials()
        try:
            self._conn = await asyncio.wait_for(
                asyncssh.connect(
                    s.host,
                    port=s.port,
                    username=s.user,
                    client_keys=[key],
                    known_hosts=known,
                    agent_path=None,
                    password=None,
                    preferred_auth="publickey",
                    config=None,
                    keepalive_interval=s.keepalive_interval,
                    keepalive_count_max=s.keepalive_count_max,
                    client_factory=lambda: self._watcher,
                ),
                s.connect_timeout,
            )
            self._sftp = await self._deadline(self._conn.start_sftp_client())
        except LinkError:  # the SFTP start got no answer within write_timeout
            await self.close()
            raise
        except asyncssh.HostKeyNotVerifiable as exc:
            raise self._host_key_error(known) from exc
        except asyncssh.PermissionDenied as exc:
            raise AuthError(
                f"{s.target} refused the key {s.key} ({exc.reason}); add its public key to the "
                "monitor account's authorized_keys (see docs/shipper.md)"
            ) from exc
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            await self.close()
            fault, hint = _connect_fault(exc, s)
            raise LinkError(
                f"cannot connect to {s.target}: {_describe(exc)}" + (f" ({hint})" if hint else ""),
                fault,
            ) from exc

    def _host_key_error(self, known: asyncssh.SSHKnownHosts) -> HostKeyError:
        s = self.settings
        trusted, _, revoked, *_ = known.match(s.host, s.host, s.port)
        if revoked and not trusted:
            what = (
                f"the host key of {s.host}:{s.port} is not trusted: {s.known_hosts} marks "
                "keys for it @revoked and lists no other; verify the monitor's current key "
                "with its administrator and add it"
            )
        elif trusted:
            what = (
                f"the host key of {s.host}:{s.port} has CHANGED: it matches none of the keys "
                f"{s.known_hosts} lists for it. This may be an attack; never accept it blindly: "
                "verify the new key with the monitor's administrator, then replace the entry"
            )
        else:
            what = (
                f"the host key of {s.host}:{s.port} is unknown: {s.known_hosts} has no entry "
                f"for it. Get the key (ssh-keyscan -p {s.port} {s.host} >> {s.known_hosts}), "
                "verify its fingerprint with the monitor's administrator (ssh-keygen -lf "
                f"{s.known_hosts}), and keep the line only if it matches; it must read "
                f"'{self.host_pattern} <type> <key>'"
            )
        return HostKeyError(what)

    def check(self) -> None:
        """Raise ``LinkError`` if the connection has ended (e.g. keepalive timeout while idle)."""
        if self._watcher.closed:
            raise self._lost(None, None)

    def _lost(self, during: str | None, exc: BaseException | None) -> LinkError:
        """The error for a request that failed because the link went away.

        Once the connection has ended, its own cause (a reset, keepalives
        unanswered) is reported rather than the error of the request that was
        in flight, so one fault gets one kind and one description whatever
        was being done when it struck; ``during`` only adds which request it was.
        """
        cause: BaseException | None = exc
        if self._watcher.closed:
            cause = self._watcher.lost
        reason = _describe(cause) if cause is not None else "closed by the monitor"
        where = f" ({during})" if during else ""
        fault = _ended_fault(cause) if cause is not None else Fault.LOST
        return LinkError(f"link to {self.settings.target} lost{where}: {reason}", fault)

    def _connection_gone(self, exc: asyncssh.SFTPError) -> bool:
        """Did ``exc`` come from the connection ending, rather than from the monitor's answer?"""
        gone = asyncssh.SFTPNoConnection | asyncssh.SFTPConnectionLost
        return self._watcher.closed or isinstance(exc, gone)

    async def _deadline(self, awaitable: Awaitable[T]) -> T:
        timeout = self.settings.write_timeout or None
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except TimeoutError as exc:
            if self._watcher.closed:
                raise self._lost(None, exc) from exc
            raise LinkError(
                f"link to {self.settings.target} lost: no answer to an SFTP request within "
                f"{timeout:g} s (monitor's disk or SFTP server hung?)",
                Fault.HUNG,
            ) from exc

    async def _file(self, remote: str) -> asyncssh.SFTPClientFile:
        handle = self._files.get(remote)
        if handle is None:
            assert self._sftp is not None
            path = posixpath.join(self.settings.remote_dir, remote)
            parent = posixpath.dirname(path)
            try:
                if parent not in self._dirs:
                    await self._deadline(self._sftp.makedirs(parent, exist_ok=True))
                    self._dirs.add(parent)
                handle = await self._deadline(
                    self._sftp.open(path, asyncssh.FXF_WRITE | asyncssh.FXF_CREAT, encoding=None)
                )
            except LinkError:
                raise
            except asyncssh.SFTPError as exc:
                if self._connection_gone(exc):
                    raise self._lost(f"opening {path}", exc) from exc
                raise RemoteWriteError(
                    f"{self.settings.target} cannot create {path}: {_describe(exc)} (check "
                    "remote_dir, and that the account may write there; a full disk or "
                    "quota on the monitor gives this too)"
                ) from exc
            except (OSError, asyncssh.Error) as exc:
                raise self._lost(f"opening {path}", exc) from exc
            self._files[remote] = handle
        return handle

    async def size(self, remote: str) -> int | None:
        """Size of the remote segment, or None when it does not exist."""
        assert self._sftp is not None
        path = posixpath.join(self.settings.remote_dir, remote)
        try:
            attrs = await self._deadline(self._sftp.stat(path))
        except asyncssh.SFTPNoSuchFile:
            return None
        except LinkError:
            raise
        except (OSError, asyncssh.Error) as exc:
            raise self._lost(f"stat {path}", exc) from exc
        return attrs.size

    async def read(self, remote: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of the remote segment from ``offset`` (short at its end)."""
        assert self._sftp is not None
        path = posixpath.join(self.settings.remote_dir, remote)
        try:
            handle = await self._deadline(self._sftp.open(path, "rb", encoding=None))
            try:
                data = await self._deadline(handle.read(length, offset))
            finally:
                await self._deadline(handle.close())
        except LinkError:
            raise
        except (OSError, asyncssh.Error) as exc:
            raise self._lost(f"reading {path}", exc) from exc
        assert isinstance(data, bytes)  # opened without an encoding
        return data

    async def listdir(self, stream: str) -> list[tuple[str, int]]:
        """(name, size) of every file in a stream's remote directory; [] when it is missing."""
        assert self._sftp is not None
        path = posixpath.join(self.settings.remote_dir, stream)
        try:
            names = await self._deadline(self._sftp.readdir(path))
        except asyncssh.SFTPNoSuchFile:
            return []
        except LinkError:
            raise
        except (OSError, asyncssh.Error) as exc:
            raise self._lost(f"listing {path}", exc) from exc
        return sorted(
            (str(n.filename), n.attrs.size or 0)
            for n in names
            if n.filename not in (".", "..") and n.attrs.type == asyncssh.FILEXFER_TYPE_REGULAR
        )

    async def write(self, remote: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` of the remote segment; return once the monitor said OK."""
        try:
            handle = await self._file(remote)
            await self._deadline(handle.write(data, offset))
        except LinkError:
            raise
        except asyncssh.SFTPError as exc:
            if self._connection_gone(exc):
                raise self._lost(f"writing {remote}", exc) from exc
            raise RemoteWriteError(
                f"{self.settings.target} refused to write {len(data)} bytes at offset {offset} "
                f"of {remote}: {_describe(exc)} (monitor disk full, quota, or permissions?)"
            ) from exc
        except (OSError, asyncssh.Error) as exc:
            raise self._lost(f"writing {remote}", exc) from exc

    async def sync(self, only: str | None = None) -> None:
        """Ask the monitor to fsync every open segment, or just ``only`` (``fsync@openssh.com``).

        Skipped silently when the server lacks the extension.
        """
        if only is not None:
            handles = [(only, await self._file(only))]
        else:
            handles = list(self._files.items())
        for remote, handle in handles:
            try:
                await self._deadline(handle.fsync())
            except asyncssh.SFTPOpUnsupported:
                return
            except LinkError:
                raise
            except (OSError, asyncssh.Error) as exc:
                raise self._lost(f"fsync of {remote}", exc) from exc

    async def release(self, remote: str) -> None:
        """Close the handle of a finished segment."""
        handle = self._files.pop(remote, None)
        if handle is not None:
            try:
                await self._deadline(handle.close())
            except LinkError:
                raise
            except (OSError, asyncssh.Error) as exc:
                raise self._lost(f"closing {remote}", exc) from exc

    async def close(self) -> None:
        """Drop the connection without waiting for the monitor."""
        self._files.clear()
        self._dirs.clear()
        if self._sftp is not None:
            self._sftp.exit()
            self._sftp = None
        if self._conn is not None:
            self._conn.abort()
            self._conn = None

"""The monitor-side account from docs/shipper.md: chrooted, SFTP only, no remove/rename/setstat."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from .harness import Harness, lines
from .servers import Sshd

DENIED = "remove,rmdir,rename,posix-rename,symlink,hardlink,setstat,fsetstat,lsetstat,copy-data"


@pytest.fixture
def chroot() -> Iterator[Path]:
    """A chroot directory whose every component is root-owned and not group/world-writable.

    The test's tmp_path lives under the world-writable /tmp, which sshd refuses
    for ChrootDirectory, so this one is made under /run (root only).
    """
    if os.geteuid() != 0:
        pytest.skip("ChrootDirectory needs root to run sshd with a root-owned chroot")
    root = Path(tempfile.mkdtemp(prefix="sgb-ship-chroot-", dir="/run"))
    root.chmod(0o755)
    (root / "incoming").mkdir(mode=0o750)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_ships_into_chrooted_sftp_only_account(tmp_path: Path, chroot: Path) -> None:
    """Positional writes work in the restricted account; removing a segment is refused."""
    server = Sshd(
        tmp_path / "sshd",
        extra_config=(
            f"Match User {os.environ.get('USER', 'root')},root\n"
            f"    ChrootDirectory {chroot}\n"
            f"    ForceCommand internal-sftp -d /incoming -P {DENIED}\n"
            "    AllowTcpForwarding no\n"
            "    X11Forwarding no\n"
            "    PermitTTY no\n"
        ),
    )
    h = Harness(tmp_path, server)
    try:
        log = h.logs / "squidGuard.log"
        log.write_bytes(lines(0, 2000))
        result = h.run_once(str(log), remote_dir="/incoming")
        assert result.returncode == 0, result.stderr
        with open(log, "ab") as fh:
            fh.write(lines(2000, 10))
        result = h.run_once(str(log), remote_dir="/incoming")
        assert result.returncode == 0, result.stderr
        [segment] = sorted((chroot / "incoming" / "squidGuard").iterdir())
        assert segment.read_bytes() == log.read_bytes()

        async def try_remove() -> None:
            async with (
                asyncssh.connect(
                    "127.0.0.1",
                    port=server.port,
                    username=server.user,
                    client_keys=[str(server.client_key)],
                    known_hosts=str(server.known_hosts),
                    agent_path=None,
                    config=None,
                ) as conn,
                conn.start_sftp_client() as sftp,
            ):
                await sftp.remove(f"/incoming/squidGuard/{segment.name}")

        with pytest.raises(asyncssh.SFTPError):
            asyncio.run(try_remove())
        assert segment.exists()
    finally:
        h.close()
        server.stop()

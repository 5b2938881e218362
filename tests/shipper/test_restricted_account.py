"""The monitor-side account exactly as README.md and docs/shipper.md show it: chrooted, SFTP
only, no remove/rename/setstat, a ``restrict,from=`` key line."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from .harness import Harness, lines
from .servers import SSHD, Sshd

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = [ROOT / "README.md", ROOT / "docs" / "shipper.md"]


def documented_match_block(doc: Path) -> list[str]:
    """The lines of the sshd_config ``Match User logship-*`` block shown in ``doc``."""
    text = doc.read_text()
    m = re.search(r"```\n(Match User logship-\*\n.*?)```", text, re.S)
    assert m, f"{doc.name} shows no 'Match User logship-*' block"
    return m.group(1).splitlines()


def documented_key_line(doc: Path) -> str:
    """The options of the restricted authorized_keys line shown in ``doc``."""
    m = re.search(r"^(restrict,from=\"[^\"]+\") ssh-ed25519 ", doc.read_text(), re.M)
    assert m, f"{doc.name} shows no restricted authorized_keys line"
    return m.group(1)


def account_block(doc: Path, user: str, chroot: Path, keys: Path) -> str:
    """The documented block, for ``user`` and the test's chroot and key file."""
    block = documented_match_block(doc)
    body = "\n".join(block[1:])
    body = body.replace("/srv/logship/%u", str(chroot)).replace(
        "/etc/ssh/logship_keys/%u", str(keys)
    )
    return f"Match User {user}\n{body}\n"


@pytest.mark.parametrize("doc", DOCUMENTED, ids=lambda p: p.name)
def test_documented_block_is_valid_sshd_config(tmp_path: Path, doc: Path) -> None:
    """sshd itself accepts the documented block verbatim and applies it to a logship account."""
    server = Sshd(tmp_path / "sshd", start=False)
    config = tmp_path / "sshd_config"
    config.write_text(server.config.read_text() + "\n".join(documented_match_block(doc)) + "\n")
    shown = subprocess.run(
        [str(SSHD), "-T", "-f", str(config), "-C", "user=logship-proxy-a,host=p,addr=192.0.2.10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    effective = set(shown.stdout.splitlines())
    assert "chrootdirectory /srv/logship/%u" in effective  # sshd -T shows %u unexpanded
    assert "authorizedkeysfile /etc/ssh/logship_keys/%u" in effective
    assert any(
        ln.startswith("forcecommand internal-sftp -d /incoming -P remove,") for ln in effective
    )
    assert {"passwordauthentication no", "permittty no", "allowtcpforwarding no"} <= effective


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
    """Positional writes work in the README's account; removing a segment is refused; the
    same key from another address is refused by its from= option."""
    keys = tmp_path / "logship_keys"
    server = Sshd(tmp_path / "sshd", start=False)
    server.config.write_text(
        server.config.read_text() + account_block(DOCUMENTED[0], server.user, chroot, keys)
    )
    # The key line as documented, from="..." naming the proxy (here: loopback).
    options = documented_key_line(DOCUMENTED[0]).replace("192.0.2.10", "127.0.0.1")
    keys.write_text(f"{options} {server.authorized_keys.read_text()}")
    server.start()
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

        async def try_remove(source: str) -> None:
            async with (
                asyncssh.connect(
                    "127.0.0.1",
                    port=server.port,
                    local_addr=(source, 0),
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
            asyncio.run(try_remove("127.0.0.1"))
        with pytest.raises(asyncssh.PermissionDenied):
            asyncio.run(try_remove("127.0.0.2"))  # not the from= address
        assert segment.exists()
    finally:
        h.close()
        server.stop()

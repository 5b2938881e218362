"""One warning per change of fault kind, whatever the prose of each failure says.

The lost-link message names the SFTP request in flight ("lost (fsync of …)",
"lost (writing …)"), so two failures of one fault read differently; the
shipper compares their kinds, and so do the tests, through the ``[fault=KIND]``
tag that starts each line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from squidguard_bloom.shipper.errors import AuthError, LinkError, RemoteWriteError
from squidguard_bloom.shipper.faults import Fault, fault_tag
from squidguard_bloom.shipper.ship import Shipper, ShipSettings
from squidguard_bloom.shipper.transport import LinkSettings

from .harness import failed_attempts, warned_faults


@pytest.fixture
def shipper(tmp_path: Path) -> Shipper:
    link = LinkSettings("monitor.example", "logship", tmp_path / "key", tmp_path / "known_hosts")
    return Shipper(ShipSettings(link=link, files={}, state_dir=tmp_path / "state"))


def test_one_warning_per_change_of_fault_kind(
    shipper: Shipper, caplog: pytest.LogCaptureFixture
) -> None:
    target = "logship@monitor.example:22"
    failures = [
        LinkError(f"link to {target} lost (fsync of a/1.log): ConnectionLost: Connection lost"),
        LinkError(f"link to {target} lost (writing a/1.log): ConnectionResetError: reset"),
        LinkError(f"link to {target} lost: closed by the monitor"),
        LinkError(f"cannot connect to {target}: ConnectionRefusedError", Fault.REFUSED),
        LinkError(f"cannot connect to {target}: ConnectionRefusedError", Fault.REFUSED),
        RemoteWriteError(f"{target} refused to write 10 bytes at offset 0 of a/1.log"),
        LinkError(f"link to {target} lost (stat a/1.log): ConnectionLost", Fault.LOST),
    ]
    with caplog.at_level(logging.DEBUG, logger="squidguard_bloom.shipper"):
        for failure in failures:
            shipper.link_failed(failure, 0.5)
    text = "\n".join(f" {r.levelname}: {r.getMessage()}" for r in caplog.records)
    assert warned_faults(text) == [Fault.LOST, Fault.REFUSED, Fault.REMOTE_REFUSED, Fault.LOST]
    assert failed_attempts(text, Fault.LOST) == 4
    assert shipper.status_line() == "status: link down [fault=lost]"


def test_every_error_has_a_kind_and_its_tag() -> None:
    assert LinkError("x").fault is Fault.LOST
    assert RemoteWriteError("x").fault is Fault.REMOTE_REFUSED
    assert AuthError("x").fault is Fault.AUTH
    assert LinkError("x", Fault.STALLED).fault is Fault.STALLED
    assert fault_tag(Fault.CONNECT_TIMEOUT) == "[fault=connect-timeout]"
    assert str(LinkError("link to m lost: reset")) == "link to m lost: reset"

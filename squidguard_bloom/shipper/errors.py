"""The shipper's exceptions: one base, ``ShipError``, and a branch per failure kind.

``retryable`` tells the supervising loop whether waiting and reconnecting can
help (a dropped link, a full disk on the monitor) or whether only an operator
can (a host key that is not trusted, a key the monitor refuses, a bad config).
``fault`` is the stable kind the log line carries (``squidguard_bloom.shipper.faults``).
"""

from __future__ import annotations

from squidguard_bloom.errors import SquidguardBloomError
from squidguard_bloom.shipper.faults import Fault


class ShipError(SquidguardBloomError, OSError):
    """Base of every error the log shipper raises on purpose."""

    retryable = False
    default_fault = Fault.CONFIG

    def __init__(self, message: str, fault: Fault | None = None) -> None:
        super().__init__(message)
        self.fault = fault or self.default_fault


class ShipConfigError(ShipError, ValueError):
    """The shipper's configuration or command line cannot be used."""


class CheckpointError(ShipError):
    """The checkpoint file exists but cannot be read or written."""

    default_fault = Fault.CHECKPOINT


class LinkError(ShipError):
    """The SSH link failed in a way that a reconnect may repair."""

    retryable = True
    default_fault = Fault.LOST


class RemoteWriteError(LinkError):
    """The monitor answered a write with an error (disk full, quota, permissions)."""

    default_fault = Fault.REMOTE_REFUSED


class HostKeyError(ShipError):
    """The monitor's host key is unknown or has changed: never accepted automatically."""

    default_fault = Fault.HOST_KEY


class AuthError(ShipError):
    """The monitor refused the shipper's key."""

    default_fault = Fault.AUTH

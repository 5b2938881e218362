"""The shipper's exceptions: one base, ``ShipError``, and a branch per failure kind.

``retryable`` tells the supervising loop whether waiting and reconnecting can
help (a dropped link, a full disk on the monitor) or whether only an operator
can (a host key that is not trusted, a key the monitor refuses, a bad config).
"""

from __future__ import annotations

from squidguard_bloom.errors import SquidguardBloomError


class ShipError(SquidguardBloomError, OSError):
    """Base of every error the log shipper raises on purpose."""

    retryable = False


class ShipConfigError(ShipError, ValueError):
    """The shipper's configuration or command line cannot be used."""


class CheckpointError(ShipError):
    """The checkpoint file exists but cannot be read or written."""


class LinkError(ShipError):
    """The SSH link failed in a way that a reconnect may repair."""

    retryable = True


class RemoteWriteError(LinkError):
    """The monitor answered a write with an error (disk full, quota, permissions)."""


class HostKeyError(ShipError):
    """The monitor's host key is unknown or has changed: never accepted automatically."""


class AuthError(ShipError):
    """The monitor refused the shipper's key."""

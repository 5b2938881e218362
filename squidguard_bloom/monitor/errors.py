"""The monitor's exceptions: one base, ``MonitorError``, with a branch per kind."""

from __future__ import annotations

from squidguard_bloom.errors import SquidguardBloomError


class MonitorError(SquidguardBloomError):
    """Base of every error the monitor raises on purpose; the message says what to do."""


class DatabaseError(MonitorError):
    """The database cannot be opened, migrated or written."""


class MonitorConfigError(MonitorError, ValueError):
    """The monitor's configuration or command line cannot be used."""

"""The error the configuration loader raises."""

from __future__ import annotations

from squidguard_bloom.core.config.model import Diagnostic
from squidguard_bloom.errors import SquidguardBloomError


class ConfigError(SquidguardBloomError):
    """A configuration that cannot be used.

    ``diagnostics`` holds every error of the file (not only the first), in
    file order; ``str()`` gives one ``file:line:col: error: …`` per line.
    ``emergency`` is the file's ``emergency`` setting when it could be read.
    """

    def __init__(self, diagnostics: list[Diagnostic], *, emergency: str | None = None) -> None:
        self.diagnostics = diagnostics
        self.emergency = emergency
        super().__init__("\n".join(str(d) for d in diagnostics))

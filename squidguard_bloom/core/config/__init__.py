"""squidGuard.conf: :func:`load_config` reads and checks one into a :class:`Config`."""

from squidguard_bloom.core.config.errors import ConfigError
from squidguard_bloom.core.config.loader import load_config
from squidguard_bloom.core.config.model import Config, Diagnostic

__all__ = ["Config", "ConfigError", "Diagnostic", "load_config"]

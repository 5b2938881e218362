"""squidGuard.conf: :func:`load_config` reads and checks one into a :class:`Config`."""

from squidguard_bloom.config.model import Config, Diagnostic
from squidguard_bloom.config.parser import ConfigError, load_config

__all__ = ["Config", "ConfigError", "Diagnostic", "load_config"]

"""load_config: one squidGuard.conf file -> a checked Config."""

from __future__ import annotations

import os

from squidguard_bloom.core.config.errors import ConfigError
from squidguard_bloom.core.config.model import Config, Diagnostic, Pos
from squidguard_bloom.core.config.parser import Parser
from squidguard_bloom.core.config.resolve import finish

DEBIAN_DBHOME = "/var/lib/squidguard/db"
DEBIAN_LOGDIR = "/var/log/squidguard"


def load_config(path: str | os.PathLike[str], *, dbhome: str = DEBIAN_DBHOME,
                logdir: str = DEBIAN_LOGDIR) -> Config:
    """Read and check a squidGuard.conf and the files it names.

    dbhome and logdir apply when the file sets none (squidGuard's compiled-in
    defaults on Debian).  Raises ConfigError listing every error; warnings
    end up in ``Config.warnings``.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            text = fh.read().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise ConfigError([Diagnostic(Pos(name, 1, 1), f"cannot read the configuration: "
                                                      f"{exc.strerror}; check the path and its "
                                                      "permissions")]) from exc
    parser = Parser(name, text)
    parser.parse()
    return finish(parser, dbhome, logdir)

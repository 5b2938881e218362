"""Fixtures for the configuration tests: a temp tree with dbhome, logdir and a config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from squidguard_bloom.core.config.errors import ConfigError
from squidguard_bloom.core.config.loader import load_config
from squidguard_bloom.core.config.model import Config

DEFAULT_ACL = "acl {\n default {\n  pass all\n }\n}\n"


@dataclass
class Tree:
    """tmp_path/db (dbhome), tmp_path/logs (logdir) and tmp_path/sg.conf."""

    root: Path

    @property
    def db(self) -> Path:
        return self.root / "db"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def conf(self) -> Path:
        return self.root / "sg.conf"

    def file(self, rel: str, text: str = "example.com\n") -> Path:
        """Create db/rel holding text."""
        path = self.db / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def write(self, text: str) -> Path:
        self.conf.write_text(text)
        return self.conf

    def load(self, text: str) -> Config:
        """Load text with dbhome/logdir defaults pointing into the tree."""
        self.write(text)
        return load_config(self.conf, dbhome=str(self.db), logdir=str(self.logs))

    def errors(self, text: str) -> list[str]:
        """The errors of text as 'LINE:COL: error: MESSAGE' (the config's path cut off)."""
        with pytest.raises(ConfigError) as info:
            self.load(text)
        lines = str(info.value).splitlines()
        assert len(lines) == len(info.value.diagnostics)
        prefix = f"{self.conf}:"
        return [line.removeprefix(prefix) for line in lines]

    def warnings(self, text: str) -> list[str]:
        """The warnings of a loadable text as 'LINE:COL: warning: MESSAGE'."""
        prefix = f"{self.conf}:"
        return [str(w).removeprefix(prefix) for w in self.load(text).warnings]


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    (tmp_path / "db").mkdir()
    (tmp_path / "logs").mkdir()
    return Tree(tmp_path)

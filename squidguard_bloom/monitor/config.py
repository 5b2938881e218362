"""The monitor's settings: a TOML file (``--config``) overridden by flags.

Default file: ``/etc/squidguard-bloom/monitor.toml`` when it exists. Keys:

```toml
db = "/var/lib/squidguard-bloom-monitor/monitor.db"   # or "postgresql://monitor@/monitor"
roots = ["/srv/logship"]        # each subdirectory is a proxy (logship-NAME -> NAME)
tz = "Europe/Berlin"            # the proxies' clock for squidGuard-format times (default: local)
raw_days = 30                   # raw rows: subscribers' browsing data
rollup_days = 400
poll_interval = 0.5

[proxies]                       # proxies outside the roots: NAME = directory of its streams
proxy-x = "/srv/other/incoming"
```

Later parts of the monitor add their own tables (``[serve]``, ``[alerts]``) to
``SECTIONS``; any other unknown key is an error naming the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from squidguard_bloom.monitor.errors import MonitorConfigError

DEFAULT_CONFIG = Path("/etc/squidguard-bloom/monitor.toml")
DEFAULT_DB = "/var/lib/squidguard-bloom-monitor/monitor.db"
SECTIONS: set[str] = set()  # tables owned by other parts of the monitor (serve, alerts)
SECTIONS.add("alerts")  # read by squidguard_bloom.monitor.alerts.settings


@dataclass
class MonitorConfig:
    """Everything the monitor commands read from the file and flags."""

    db: str = DEFAULT_DB
    roots: list[Path] = field(default_factory=list)
    proxies: dict[str, Path] = field(default_factory=dict)
    tz: str | None = None
    raw_days: float = 30.0
    rollup_days: float = 400.0
    poll_interval: float = 0.5
    sections: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def zone(self) -> ZoneInfo | None:
        """The proxies' time zone (None: this host's local time)."""
        if self.tz is None:
            return None
        try:
            return ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise MonitorConfigError(f"tz '{self.tz}' is not a known time zone; use a name "
                                     "such as Europe/Berlin or UTC") from exc


_TYPES: dict[str, type] = {"db": str, "tz": str, "raw_days": float, "rollup_days": float,
                           "poll_interval": float}


def load(path: Path | None) -> MonitorConfig:
    """Read path (or the default file when it exists) into a MonitorConfig."""
    cfg = MonitorConfig()
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return cfg
        path = DEFAULT_CONFIG
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise MonitorConfigError(f"{path}: cannot read the config: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MonitorConfigError(f"{path}: {exc}") from exc
    cfg.source = path
    for key, value in doc.items():
        if key in _TYPES:
            kind = _TYPES[key]
            number = kind is float and isinstance(value, int) and not isinstance(value, bool)
            if not (number or isinstance(value, kind)):
                raise MonitorConfigError(f"{path}: '{key}' must be a {kind.__name__}")
            setattr(cfg, key, float(value) if number else value)
        elif key == "roots":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise MonitorConfigError(f"{path}: 'roots' must be a list of directories")
            cfg.roots = [Path(v) for v in value]
        elif key == "proxies":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise MonitorConfigError(f"{path}: [proxies] maps names to directories")
            cfg.proxies = {k: Path(v) for k, v in value.items()}
        elif key in SECTIONS:
            cfg.sections[key] = value
        else:
            raise MonitorConfigError(f"{path}: unknown setting '{key}'; see docs/monitor.md")
    check(cfg)
    return cfg


def check(cfg: MonitorConfig) -> None:
    """Refuse values that cannot work, with what to write instead."""
    if cfg.raw_days <= 0 or cfg.rollup_days <= 0:
        raise MonitorConfigError("raw_days and rollup_days must be more than 0")
    if cfg.rollup_days < cfg.raw_days:
        raise MonitorConfigError("rollup_days must be at least raw_days (rollups summarise "
                                 "the raw rows and outlive them)")
    if cfg.poll_interval <= 0:
        raise MonitorConfigError("poll_interval must be more than 0 seconds")
    cfg.zone()

"""The ``[alerts]`` table of the monitor's TOML configuration, with a default for everything.

See docs/alerts.md for a complete example. Durations are numbers of seconds or
strings such as ``"30s"``, ``"5m"``, ``"4h"``, ``"2d"``. Every error names the
key and what was expected.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squidguard_bloom.monitor.errors import MonitorConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
          "w": 604800.0}


def duration(value: object, where: str) -> float:
    """Seconds of a TOML duration (number or "5m"); MonitorConfigError naming where."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise MonitorConfigError(f"{where}: {value!r} is not a duration; write seconds or a "
                             "string such as \"30s\", \"5m\", \"4h\", \"2d\"")


#: Every rule, its defaults, and which of its keys are durations.
RULE_DEFAULTS: dict[str, dict[str, Any]] = {
    # no line at all from a proxy for `after` (its helpers and shipper send status lines
    # every minute, so a live proxy is never quiet that long); proxies quiet for longer
    # than `forget_after` are taken as retired
    "silent": {"after": 180.0, "for": 120.0, "forget_after": 7 * 86400.0},
    # TCP connect to Squid's port and sshd, ICMP echo where the monitor may send it
    "unreachable": {"for": 60.0},
    # the shipper's own status line: link not up, or a file more than `lag` behind
    "shipper_lag": {"lag": 120.0, "for": 60.0, "stale": 300.0},
    # a helper process says emergency=pass|block in its status line
    "emergency": {"for": 0.0, "stale": 300.0},
    # the welcome filter over its capacity, or its false-positive rate past target x factor
    "welcome_filter": {"for": 0.0, "fpr_factor": 1.0, "stale": 300.0},
    # blocks in the last `window` above `factor` x the same window of the last `weeks` weeks
    "blocks_spike": {"for": 0.0, "window": 3600.0, "factor": 3.0, "weeks": 4,
                     "min_blocks": 100, "interval": 60.0},
    # unparsed lines in the last `window`: at least `min_lines` and `ratio` of all lines
    "unparsed": {"for": 0.0, "window": 900.0, "min_lines": 10, "ratio": 0.01,
                 "interval": 60.0},
}
_DURATION_KEYS = {"after", "for", "forget_after", "lag", "stale", "window", "interval",
                  "keep_firing_for"}
_NUMBER_KEYS = {"fpr_factor", "factor", "ratio"}
_INT_KEYS = {"weeks", "min_blocks", "min_lines"}


@dataclass
class Rule:
    """One rule's settings (the defaults above, overridden by ``[alerts.rules.NAME]``)."""

    name: str
    enabled: bool = True
    for_: float = 0.0
    keep_firing_for: float = 0.0
    interval: float = 0.0  # 0: every evaluation
    params: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.params[key]


@dataclass
class ProbeTarget:
    """``[alerts.probes.NAME]``: where to probe a proxy (addresses from the config only)."""

    proxy: str
    address: str
    squid_port: int | None = 3128
    ssh_port: int | None = 22
    icmp: bool = True


@dataclass
class Channel:
    """``[[alerts.channels]]``: where messages go."""

    name: str
    kind: str  # telegram | webhook | email
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Inhibit:
    """``[[alerts.inhibit]]``: a firing source alert mutes target alerts with equal labels."""

    source: str
    targets: list[str]
    equal: list[str] = field(default_factory=lambda: ["proxy"])


@dataclass
class AlertSettings:
    """The whole ``[alerts]`` table."""

    evaluation_interval: float = 5.0
    probe_interval: float = 4.0
    probe_timeout: float = 3.0
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0
    group_by: list[str] = field(default_factory=lambda: ["rule"])
    queue_size: int = 100
    max_attempts: int = 8
    max_age: float = 3600.0  # a message not delivered by then is given up
    rules: dict[str, Rule] = field(default_factory=dict)
    probes: dict[str, ProbeTarget] = field(default_factory=dict)
    channels: list[Channel] = field(default_factory=list)
    inhibit: list[Inhibit] = field(default_factory=list)
    tz: str | None = None


#: Keys of each channel type: a type to check, or "d" for a duration.
CHANNEL_KEYS: dict[str, dict[str, type | str]] = {
    "telegram": {"credentials_file": str, "api_url": str, "min_interval": "d", "timeout": "d"},
    "webhook": {"url": str, "secret_file": str, "min_interval": "d", "timeout": "d"},
    "email": {"host": str, "port": int, "starttls": bool, "ca_file": str, "sender": str,
              "to": list, "credentials_file": str, "min_interval": "d", "timeout": "d"},
}
CHANNEL_REQUIRED = {"telegram": ["credentials_file"], "webhook": ["url", "secret_file"],
                    "email": ["host", "sender", "to"]}


def _rule(name: str, table: dict[str, Any]) -> Rule:
    where = f"[alerts.rules.{name}]"
    params = dict(RULE_DEFAULTS[name])
    rule = Rule(name)
    for key, value in table.items():
        k = f"{where} {key}"
        if key == "enabled":
            if not isinstance(value, bool):
                raise MonitorConfigError(f"{k}: write true or false")
            rule.enabled = value
        elif key in _DURATION_KEYS and (key in params or key in ("keep_firing_for",
                                                                  "interval")):
            params[key] = duration(value, k)
        elif key in _NUMBER_KEYS and key in params:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise MonitorConfigError(f"{k}: write a number above 0")
            params[key] = float(value)
        elif key in _INT_KEYS and key in params:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MonitorConfigError(f"{k}: write a whole number of 1 or more")
            params[key] = value
        else:
            known = ", ".join(sorted({"enabled", "keep_firing_for", "interval", *params}))
            raise MonitorConfigError(f"{where}: unknown key '{key}' (known: {known})")
    rule.for_ = params.pop("for")
    rule.keep_firing_for = params.pop("keep_firing_for", 0.0)
    rule.interval = params.pop("interval", 0.0)
    rule.params = params
    return rule


def _probe(name: str, table: object) -> ProbeTarget:
    where = f"[alerts.probes.{name}]"
    if not isinstance(table, dict):
        raise MonitorConfigError(f"{where}: write a table with address = \"...\"")
    address = table.get("address")
    if not isinstance(address, str) or not address:
        raise MonitorConfigError(f"{where}: 'address' (the proxy's IP address or host name) "
                                 "is required")
    target = ProbeTarget(name, address)
    for key, value in table.items():
        if key == "address":
            continue
        if key in ("squid_port", "ssh_port"):
            if value is False:
                setattr(target, key, None)
            elif isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                raise MonitorConfigError(f"{where} {key}: write a TCP port (1-65535) or false")
            else:
                setattr(target, key, value)
        elif key == "icmp":
            if not isinstance(value, bool):
                raise MonitorConfigError(f"{where} icmp: write true or false")
            target.icmp = value
        else:
            raise MonitorConfigError(f"{where}: unknown key '{key}' (known: address, "
                                     "squid_port, ssh_port, icmp)")
    return target


def _channel(i: int, table: object) -> Channel:
    where = f"[[alerts.channels]] #{i + 1}"
    if not isinstance(table, dict):
        raise MonitorConfigError(f"{where}: write a table with type = \"telegram\", "
                                 "\"webhook\" or \"email\"")
    kind = table.get("type")
    if kind not in CHANNEL_KEYS:
        raise MonitorConfigError(f"{where}: type must be \"telegram\", \"webhook\" or "
                                 f"\"email\", not {kind!r}")
    name = table.get("name", kind)
    if not isinstance(name, str) or not name:
        raise MonitorConfigError(f"{where}: name must be a non-empty string")
    where = f"[[alerts.channels]] {name}"
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("type", "name"):
            continue
        want = CHANNEL_KEYS[kind].get(key)
        if want is None:
            known = ", ".join(["type", "name", *CHANNEL_KEYS[kind]])
            raise MonitorConfigError(f"{where}: unknown key '{key}' (known: {known})")
        if want == "d":
            options[key] = duration(value, f"{where} {key}")
        elif want is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise MonitorConfigError(f"{where} {key}: write a list of addresses")
            options[key] = value
        elif want is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise MonitorConfigError(f"{where} {key}: write a whole number")
        elif isinstance(want, type) and want is not int and not isinstance(value, want):
            raise MonitorConfigError(f"{where} {key}: write a {want.__name__}")
        else:
            options[key] = value
    missing = [k for k in CHANNEL_REQUIRED[kind] if k not in options]
    if missing:
        raise MonitorConfigError(f"{where}: missing {', '.join(missing)}")
    return Channel(name, kind, options)


_TOP = {"evaluation_interval", "probe_interval", "probe_timeout", "group_wait",
        "group_interval", "repeat_interval", "max_age"}


def parse(table: object, tz: str | None = None) -> AlertSettings:
    """AlertSettings from the ``[alerts]`` table (``{}``: every default, no channel)."""
    if not isinstance(table, dict):
        raise MonitorConfigError("[alerts] must be a table")
    cfg = AlertSettings(tz=tz)
    rules = table.get("rules", {})
    if not isinstance(rules, dict):
        raise MonitorConfigError("[alerts.rules] must be a table of rule tables")
    for name in rules:
        if name not in RULE_DEFAULTS:
            raise MonitorConfigError(f"[alerts.rules.{name}]: no such rule (rules: "
                                     f"{', '.join(RULE_DEFAULTS)})")
    for name in RULE_DEFAULTS:
        sub = rules.get(name, {})
        if not isinstance(sub, dict):
            raise MonitorConfigError(f"[alerts.rules.{name}] must be a table")
        cfg.rules[name] = _rule(name, sub)
    for key, value in table.items():
        if key in _TOP:
            setattr(cfg, key, duration(value, f"[alerts] {key}"))
        elif key in ("queue_size", "max_attempts"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MonitorConfigError(f"[alerts] {key}: write a whole number of 1 or more")
            setattr(cfg, key, value)
        elif key == "group_by":
            if not isinstance(value, list) or not set(value) <= {"rule", "proxy"} or not value:
                raise MonitorConfigError('[alerts] group_by: write ["rule"], ["proxy"] or '
                                         '["rule", "proxy"]')
            cfg.group_by = list(value)
        elif key == "probes":
            if not isinstance(value, dict):
                raise MonitorConfigError("[alerts.probes] must be a table of proxy tables")
            cfg.probes = {n: _probe(n, t) for n, t in value.items()}
        elif key == "channels":
            if not isinstance(value, list):
                raise MonitorConfigError("alerts.channels: write [[alerts.channels]] tables")
            cfg.channels = [_channel(i, t) for i, t in enumerate(value)]
            names = [c.name for c in cfg.channels]
            if len(set(names)) != len(names):
                raise MonitorConfigError("[[alerts.channels]]: two channels share a name; "
                                         "give each a distinct name = \"...\"")
        elif key == "inhibit":
            cfg.inhibit = [_inhibit(i, t) for i, t in enumerate(
                value if isinstance(value, list) else [value])]
        elif key != "rules":
            raise MonitorConfigError(f"[alerts]: unknown key '{key}'; see docs/alerts.md")
    if "inhibit" not in table:
        cfg.inhibit = [Inhibit("unreachable", ["silent", "shipper_lag"])]
    if cfg.evaluation_interval <= 0 or cfg.probe_interval <= 0 or cfg.probe_timeout <= 0:
        raise MonitorConfigError("[alerts] evaluation_interval, probe_interval and "
                                 "probe_timeout must be more than 0")
    return cfg


def _inhibit(i: int, table: object) -> Inhibit:
    where = f"[[alerts.inhibit]] #{i + 1}"
    if not isinstance(table, dict):
        raise MonitorConfigError(f"{where}: write source = \"...\", targets = [...]")
    source, targets = table.get("source"), table.get("targets")
    equal = table.get("equal", ["proxy"])
    if source not in RULE_DEFAULTS or not isinstance(targets, list) or not all(
            t in RULE_DEFAULTS for t in targets):
        raise MonitorConfigError(f"{where}: source and targets must name rules "
                                 f"({', '.join(RULE_DEFAULTS)})")
    if not isinstance(equal, list) or not set(equal) <= {"proxy"}:
        raise MonitorConfigError(f"{where}: equal may only hold \"proxy\"")
    unknown = set(table) - {"source", "targets", "equal"}
    if unknown:
        raise MonitorConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return Inhibit(source, list(targets), list(equal))


def read_credentials(path: str, keys: tuple[str, ...], what: str) -> dict[str, str]:
    """A small TOML file of secrets (``token = "..."``); errors say what to fix."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise MonitorConfigError(f"{path}: cannot read the {what} credentials: "
                                 f"{exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MonitorConfigError(f"{path}: {exc} (write key = \"value\" lines)") from exc
    missing = [k for k in keys if not isinstance(doc.get(k), (str, int))]
    if missing:
        raise MonitorConfigError(f"{path}: missing {', '.join(missing)} for the {what} "
                                 "channel")
    return {k: str(v) for k, v in doc.items() if isinstance(v, (str, int))}


def read_secret(path: str) -> bytes:
    """A secret file's bytes (trailing newline removed)."""
    try:
        data = Path(path).read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise MonitorConfigError(f"{path}: cannot read the webhook secret: "
                                 f"{exc.strerror}") from exc
    if not data:
        raise MonitorConfigError(f"{path}: the webhook secret is empty")
    return data

"""``squidguard-bloom-ship``: command line and config file of the log shipper.

Settings come from a TOML file (``--config``, default
``/etc/squidguard-bloom/ship.toml`` when it exists) and are overridden by
flags. Passwords are refused on purpose: the shipper authenticates by key only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from squidguard_bloom.shipper.errors import ShipConfigError
from squidguard_bloom.shipper.ship import EXIT_CONFIG, ShipSettings, ship
from squidguard_bloom.shipper.transport import LinkSettings

DEFAULT_CONFIG = Path("/etc/squidguard-bloom/ship.toml")
DEFAULT_FILE = Path("/var/log/squidguard/squidGuard.log")
DEFAULT_STATE_DIR = Path("/var/lib/squidguard-bloom-ship")
STREAM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")

# config key -> (type, default); flags use the same names with dashes.
OPTIONS: dict[str, tuple[type, Any]] = {
    "host": (str, None),
    "port": (int, 22),
    "user": (str, None),
    "key": (Path, None),
    "known_hosts": (Path, None),
    "remote_dir": (str, "incoming"),
    "state_dir": (Path, DEFAULT_STATE_DIR),
    "batch_size": (int, 256 * 1024),
    "flush_interval": (float, 0.2),
    "window": (int, 8),
    "rotate_wait": (float, 5.0),
    "checkpoint_interval": (float, 1.0),
    "status_interval": (float, 60.0),
    "remote_check_interval": (float, 60.0),
    "keepalive_interval": (float, 15.0),
    "keepalive_count_max": (int, 3),
    "connect_timeout": (float, 30.0),
    "write_timeout": (float, 60.0),
    "backoff_min": (float, 1.0),
    "backoff_max": (float, 60.0),
    "remote_fsync": (bool, True),
    "log_file": (Path, None),
}
REQUIRED = ("host", "user", "key", "known_hosts")

log = logging.getLogger("squidguard_bloom.shipper")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every config key has a flag of the same name."""
    p = argparse.ArgumentParser(
        prog="squidguard-bloom-ship",
        description="Ship local log files to the monitor over SSH/SFTP, exactly once.",
    )
    p.add_argument("-c", "--config", type=Path, help=f"TOML config file (default {DEFAULT_CONFIG})")
    p.add_argument(
        "-f",
        "--file",
        action="append",
        metavar="[NAME=]PATH",
        help=f"a file to ship; repeat for several (default {DEFAULT_FILE})",
    )
    p.add_argument("--once", action="store_true", help="ship what is there, then exit")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    for name, (kind, _default) in OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(flag, type=kind, default=None, metavar=name.upper())
    return p


def _parse_file(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep:
        path, name = spec, Path(spec).stem
    return name, Path(path)


def load_config(path: Path | None) -> dict[str, Any]:
    """Read the TOML config; a missing default file is an empty config."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return {}
        path = DEFAULT_CONFIG
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ShipConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ShipConfigError(f"{path}: {exc}") from exc
    for key in doc:
        if "password" in key.lower() or "passphrase" in key.lower():
            raise ShipConfigError(
                f"{path}: '{key}' is not supported: the shipper authenticates with an "
                "unencrypted key file only; remove the password from the config"
            )
        if key not in OPTIONS and key != "files":
            raise ShipConfigError(f"{path}: unknown setting '{key}'; see docs/shipper.md")
    return doc


def settings_from(args: argparse.Namespace) -> tuple[ShipSettings, Path | None]:
    """Merge config file and flags into ``ShipSettings``; raise ``ShipConfigError`` if unusable."""
    doc = load_config(args.config)
    values: dict[str, Any] = {}
    for name, (kind, default) in OPTIONS.items():
        flag = getattr(args, name)
        raw = flag if flag is not None else doc.get(name, default)
        try:
            values[name] = raw if raw is None or isinstance(raw, kind) else kind(raw)
        except (TypeError, ValueError) as exc:
            raise ShipConfigError(f"setting '{name}': {raw!r} is not a {kind.__name__}") from exc
    missing = [n for n in REQUIRED if values[n] is None]
    if missing:
        raise ShipConfigError(
            "missing setting(s): "
            + ", ".join(missing)
            + " (config file or --"
            + " --".join(m.replace("_", "-") for m in missing)
            + ")"
        )
    if args.file:
        files = dict(_parse_file(spec) for spec in args.file)
    elif doc.get("files"):
        files = {str(k): Path(v) for k, v in dict(doc["files"]).items()}
    else:
        files = {DEFAULT_FILE.stem: DEFAULT_FILE}
    for name in files:
        if not STREAM_NAME.fullmatch(name):
            raise ShipConfigError(
                f"file name '{name}' must be letters, digits, '.', '_' or '-' (it names the "
                "remote directory)"
            )
    if values["batch_size"] < 4096 or values["window"] < 1:
        raise ShipConfigError("batch_size must be at least 4096 and window at least 1")
    link = LinkSettings(
        host=values["host"],
        port=values["port"],
        user=values["user"],
        key=values["key"],
        known_hosts=values["known_hosts"],
        remote_dir=values["remote_dir"],
        keepalive_interval=values["keepalive_interval"],
        keepalive_count_max=values["keepalive_count_max"],
        connect_timeout=values["connect_timeout"],
        write_timeout=values["write_timeout"],
    )
    settings = ShipSettings(
        link=link,
        files=files,
        state_dir=values["state_dir"],
        batch_size=values["batch_size"],
        flush_interval=values["flush_interval"],
        window=values["window"],
        rotate_wait=values["rotate_wait"],
        checkpoint_interval=values["checkpoint_interval"],
        status_interval=values["status_interval"],
        remote_check_interval=values["remote_check_interval"],
        backoff_min=values["backoff_min"],
        backoff_max=values["backoff_max"],
        remote_fsync=values["remote_fsync"],
        once=args.once,
    )
    return settings, values["log_file"]


def _setup_logging(log_file: Path | None, verbose: bool) -> None:
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(
        logging.Formatter("%(asctime)s squidguard-bloom-ship %(levelname)s: %(message)s")
    )
    root = logging.getLogger("squidguard_bloom.shipper")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``squidguard-bloom-ship``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings, log_file = settings_from(args)
    except ShipConfigError as exc:
        print(f"squidguard-bloom-ship: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _setup_logging(log_file, args.verbose)
    log.info(
        "shipping %s to %s:%s (stall detected within %.0f s)",
        ", ".join(f"{n}={p}" for n, p in settings.files.items()),
        settings.link.target,
        settings.link.remote_dir,
        settings.link.stall_bound(),
    )
    return asyncio.run(ship(settings))

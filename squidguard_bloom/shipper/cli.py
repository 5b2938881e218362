"""``squidguard-bloom-ship``: command line and config file of the log shipper.

Settings come from a TOML file (``--config``, default
``/etc/squidguard-bloom/ship.toml`` when it exists) and are overridden by
flags. Passwords are refused on purpose: the shipper authenticates by key only.
Without ``[files]`` or ``--file`` the shipper ships the helper's own logs, as
named by the helper's squidGuard.conf (``helper_config``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.handlers
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from squidguard_bloom.shipper.errors import ShipConfigError
from squidguard_bloom.shipper.faults import fault_tag
from squidguard_bloom.shipper.helperlogs import HELPER_CONFIG, helper_logs
from squidguard_bloom.shipper.ship import EXIT_CONFIG, ShipSettings, ship
from squidguard_bloom.shipper.transport import LinkSettings

DEFAULT_CONFIG = Path("/etc/squidguard-bloom/ship.toml")
DEFAULT_STATE_DIR = Path("/var/lib/squidguard-bloom-ship")
STREAM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
OWN_LOG_STREAM = "ship"  # the remote directory of the shipper's own log

# config key -> (type, default, help); flags use the same names with dashes.
OPTIONS: dict[str, tuple[type, Any, str]] = {
    "host": (str, None, "the monitor's host name or address (required)"),
    "port": (int, 22, "the monitor's sshd port"),
    "user": (str, None, "this proxy's account on the monitor (required)"),
    "key": (Path, None, "unencrypted private key file (required)"),
    "known_hosts": (Path, None, "known_hosts file pinning the monitor's host key (required)"),
    "remote_dir": (str, "incoming", "directory on the monitor; one subdirectory per file"),
    "state_dir": (Path, DEFAULT_STATE_DIR, "where checkpoint.json is kept"),
    "batch_size": (int, 256 * 1024, "largest write in bytes, cut at a line end"),
    "flush_interval": (float, 0.2, "seconds between looks at an idle file"),
    "window": (int, 8, "writes in flight"),
    "rotate_wait": (float, 5.0, "seconds a rotated file must stay unchanged"),
    "checkpoint_interval": (float, 1.0, "seconds between checkpoints while busy"),
    "status_interval": (float, 60.0, "seconds between status lines in the log"),
    "remote_check_interval": (float, 60.0, "seconds between checks of the remote sizes"),
    "keepalive_interval": (float, 15.0, "SSH keepalive interval, seconds"),
    "keepalive_count_max": (int, 3, "unanswered keepalives before the link is dropped"),
    "connect_timeout": (float, 30.0, "deadline of connect + auth + SFTP start, seconds"),
    "write_timeout": (float, 60.0, "deadline of every SFTP request, seconds"),
    "backoff_min": (float, 1.0, "first reconnect delay, seconds"),
    "backoff_max": (float, 60.0, "longest reconnect delay, seconds"),
    "remote_fsync": (bool, True, "fsync the remote files before each checkpoint"),
    "log_file": (Path, None, "log here instead of stderr (and ship it, see ship_own_log)"),
    "ship_own_log": (bool, True, "ship log_file too, as the stream 'ship' (status lines "
                     "reach the monitor)"),
    "helper_config": (Path, HELPER_CONFIG, "the helper's squidGuard.conf, read for its logs"),
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
        help="a file to ship; repeat for several (default: the helper's logs, as its "
        f"squidGuard.conf names them; see --helper-config, default {HELPER_CONFIG})",
    )
    p.add_argument("--once", action="store_true", help="ship what is there, then exit")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    for name, (kind, default, text) in OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        shown = f"{text} (default {default})" if default is not None else text
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=shown)
        else:
            p.add_argument(flag, type=kind, default=None, metavar=name.upper(), help=shown)
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
    for name, (kind, default, _text) in OPTIONS.items():
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
        files = helper_logs(values["helper_config"])
    own = values["log_file"]
    if own is not None and values["ship_own_log"] and Path(own).absolute() not in {
            Path(p).absolute() for p in files.values()}:
        files[OWN_LOG_STREAM if OWN_LOG_STREAM not in files else f"{OWN_LOG_STREAM}-log"] = own
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
    # WatchedFileHandler reopens the file after logrotate renamed it away.
    handler: logging.Handler = (
        logging.handlers.WatchedFileHandler(log_file) if log_file
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(
        logging.Formatter("%(asctime)s squidguard-bloom-ship %(levelname)s: %(message)s")
    )
    root = logging.getLogger("squidguard_bloom.shipper")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    # asyncio's own complaints about a transport that died under it
    # ("socket.send() raised exception.") repeat what the link-lost line says.
    logging.getLogger("asyncio").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``squidguard-bloom-ship``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings, log_file = settings_from(args)
    except ShipConfigError as exc:
        print(f"squidguard-bloom-ship: {fault_tag(exc.fault)} {exc}", file=sys.stderr)
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

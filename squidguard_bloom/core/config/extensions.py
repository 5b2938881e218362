"""Our ``welcome { … }`` block: its lines -> :class:`WelcomeConfig`.

squidGuard knows no such block; docs/config.md describes it.  Every bad
value is an error at its own file:line:col.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from squidguard_bloom.core.config.lexer import Token
from squidguard_bloom.core.config.model import Diagnostic, LogSpec, Pos, WelcomeConfig

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PREFIX = re.compile(r"(30[1237]):")
STATUSES = (301, 302, 303, 307)


def parse_duration(text: str) -> float:
    """``90``, ``45s``, ``30m``, ``12h``, ``1d`` -> seconds (> 0)."""
    m = _DURATION.fullmatch(text)
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"expected a duration > 0 such as 90, 45s, 30m, 12h or 1d, "
                         f"found {text!r}")
    return float(m.group(1)) * _SECONDS[m.group(2)]


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"expected a whole number > 0, found {text!r}")
    return int(text)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise ValueError(f"expected a false-positive rate between 0 and 1 (e.g. 0.001), "
                         f"found {text!r}")
    return value


def _status(text: str) -> int:
    if not text.isdigit() or int(text) not in STATUSES:
        raise ValueError(f"expected 301, 302, 303 or 307, found {text!r}")
    return int(text)


def _key(text: str) -> str:
    if text not in ("ip", "user"):
        raise ValueError(f"expected ip or user, found {text!r}")
    return text


def _exempt_host(name: str) -> str:
    """A host as requests are looked up: lower-case, no trailing dot, IDNs in punycode."""
    name = name.lower().rstrip(".")
    if name.isascii():
        return name
    from squidguard_bloom.core.idn import ascii_host  # noqa: PLC0415 - IDN names only

    return ascii_host(name).rstrip(".")


def redirect_host(url: str) -> str:
    """The host of a welcome redirect (``30x:`` prefix allowed), as _exempt_host gives it."""
    m = _PREFIX.match(url)
    target = url[m.end():] if m else url
    if re.match(r"\d{3}:", target) or not re.match(r"https?://", target, re.I):
        raise ValueError(f"expected an http:// or https:// URL with an optional 301:, 302:, "
                         f"303: or 307: prefix, found {url!r}")
    from urllib.parse import urlsplit  # noqa: PLC0415 - only a welcome block needs it (≈ 2.5 ms)

    host = urlsplit(target.split("%", 1)[0]).hostname
    if not host:
        raise ValueError(f"the URL {url!r} names no host")
    return _exempt_host(host)


def build_welcome(file: str, kw: Token, lines: dict[str, tuple[Token, list[Token]]],
                  dbhome: str, logdir: str) -> tuple[WelcomeConfig | None, list[Diagnostic]]:
    """The WelcomeConfig of a welcome block's lines, and the errors found."""
    errors: list[Diagnostic] = []

    def fail(tok: Token, message: str) -> None:
        errors.append(Diagnostic(Pos(file, tok.line, tok.col), message))

    if "redirect" not in lines:
        fail(kw, "the welcome block needs a line 'redirect URL' (the welcome page)")
        return None, errors
    values: dict[str, object] = {}
    converters: dict[str, Callable[[str], object]] = {
        "redirect": str, "key": _key, "capacity": _positive_int, "error": _rate,
        "window": parse_duration, "status": _status,
        "state": lambda s: os.path.normpath(os.path.join(dbhome, s)),
    }
    for key, convert in converters.items():
        if key not in lines:
            continue
        args = lines[key][1]
        if len(args) != 1:
            fail(args[1], f"found {args[1].shown()}, expected one value after welcome {key}")
            continue
        try:
            values[key] = convert(args[0].text)
        except ValueError as exc:
            fail(args[0], f"welcome {key}: {exc}")
    exempt = {_exempt_host(a.text) for a in lines.get("exempt", (kw, []))[1]}
    try:
        exempt.add(redirect_host(lines["redirect"][1][0].text))
    except ValueError as exc:
        fail(lines["redirect"][1][0], f"welcome redirect: {exc}")
    prefix = _PREFIX.match(str(values.get("redirect", "")))
    if prefix is not None:
        if "status" in values and values["status"] != int(prefix.group(1)):
            fail(lines["status"][1][0], f"welcome status {values['status']} contradicts the "
                                        f"redirect's {prefix.group(0)} prefix; keep one")
        values["status"] = int(prefix.group(1))
    values["exempt_hosts"] = frozenset(exempt)
    for key in ("log", "logfile"):
        if key in lines:
            args = lines[key][1]
            flags = {a.text for a in args[:-1]}
            if flags - {"anonymous", "verbose"}:
                fail(args[0], f"found {args[0].shown()}, expected [anonymous] [verbose] FILE")
                continue
            values["log"] = LogSpec(os.path.normpath(os.path.join(logdir, args[-1].text)),
                                    "anonymous" in flags, "verbose" in flags)
    if "state" not in values:
        values["state"] = os.path.join(dbhome, "welcome.bloom")
    if errors:
        return None, errors
    return WelcomeConfig(pos=Pos(file, kw.line, kw.col), **values), errors  # type: ignore[arg-type]

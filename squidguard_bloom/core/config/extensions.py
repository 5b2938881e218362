"""Our ``welcome { … }`` block: its lines -> :class:`WelcomeConfig`.

squidGuard knows no such block; docs/config.md describes it.  Every bad
value is an error at its own file:line:col.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from squidguard_bloom.core.config.lexer import Token
from squidguard_bloom.core.config.model import (
    Diagnostic,
    LogSpec,
    Pos,
    SharedConfig,
    WelcomeConfig,
)

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


_DEADLINE = re.compile(r"(\d+(?:\.\d+)?)(ms|s)?")
_URL_SCHEMES = ("redis://", "rediss://", "unix://")
_PREFIX_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


def parse_deadline(text: str) -> float:
    """``50ms``, ``0.2s``, ``1`` (seconds) -> seconds, from 1 ms to 10 s."""
    m = _DEADLINE.fullmatch(text)
    seconds = -1.0 if m is None else float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    if not 0.001 <= seconds <= 10:
        raise ValueError(f"expected a time from 1ms to 10s such as 50ms or 0.2s, found {text!r}")
    return seconds


def _shared_url(text: str, cluster: bool) -> str:
    """A Redis URL as the shared line takes it (checked, not resolved)."""
    if not text.lower().startswith(_URL_SCHEMES):
        raise ValueError(f"expected a URL redis://HOST:PORT/DB, rediss://HOST:PORT/DB or "
                         f"unix:///PATH/redis.sock, or 'cluster' and the cluster's nodes as "
                         f"redis://HOST:PORT, found {text!r}")
    rest = text.split("://", 1)[1]
    if text.lower().startswith("unix://"):
        if cluster:
            raise ValueError(f"a cluster's nodes are reached by TCP: found {text!r}")
        if not rest.startswith("/"):
            raise ValueError(f"expected unix:// and an absolute socket path, found {text!r}")
        return text
    hostport = rest.rsplit("@", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    if "@" in rest and ":" in rest.split("@", 1)[0]:
        raise ValueError("write no password in the URL: put it in a file named by "
                         "shared-password-file")
    if not hostport:
        raise ValueError(f"the URL {text!r} names no host")
    return text


def _shards(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 16384:
        raise ValueError(f"expected a number of shard keys from 1 to 16384 (one per cluster "
                         f"slot at most), found {text!r}")
    return int(text)


def _fallback(text: str) -> str:
    if text not in ("seen", "local"):
        raise ValueError(f"expected seen (no welcome while Redis is unreachable) or local "
                         f"(this proxy's own filter decides meanwhile), found {text!r}")
    return text


def _key_prefix(text: str) -> str:
    if not _PREFIX_NAME.fullmatch(text) or len(text) > 100:
        raise ValueError(f"expected a key prefix of letters, digits and _ . : - such as "
                         f"sgb:welcome, found {text!r}")
    return text


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
    values["shared"] = _build_shared(file, lines, dbhome, fail)
    if errors:
        return None, errors
    return WelcomeConfig(pos=Pos(file, kw.line, kw.col), **values), errors  # type: ignore[arg-type]


_SHARED_CONVERTERS: dict[str, Callable[[str], object]] = {
    "shared-user": str, "shared-deadline": parse_deadline, "shared-fallback": _fallback,
    "shared-shards": _shards, "shared-prefix": _key_prefix,
}


def _build_shared(file: str, lines: dict[str, tuple[Token, list[Token]]], dbhome: str,
                  fail: Callable[[Token, str], None]) -> SharedConfig | None:
    """The SharedConfig of the ``shared…`` lines, None without a ``shared`` line."""
    if "shared" not in lines:
        for key, (tok, _args) in lines.items():
            if key.startswith("shared-"):
                fail(tok, f"welcome {key} needs a line 'shared URL' naming the Redis server")
        return None
    kw, args = lines["shared"]
    cluster = args[0].text == "cluster"
    urls = args[1:] if cluster else args
    if not urls:
        fail(kw, "expected the cluster's nodes after shared cluster, e.g. "
                 "shared cluster redis://10.0.0.1:6379 redis://10.0.0.2:6379")
        return None
    if not cluster and len(urls) > 1:
        fail(urls[1], f"found {urls[1].shown()}, expected one URL after welcome shared "
                      f"(several nodes: shared cluster URL URL ...)")
        return None
    values: dict[str, object] = {}
    ok = True
    checked = []
    for tok in urls:
        try:
            checked.append(_shared_url(tok.text, cluster))
        except ValueError as exc:
            fail(tok, f"welcome shared: {exc}")
            ok = False
    for key, convert in _SHARED_CONVERTERS.items():
        if key not in lines:
            continue
        kargs = lines[key][1]
        if len(kargs) != 1:
            fail(kargs[1], f"found {kargs[1].shown()}, expected one value after welcome {key}")
            ok = False
            continue
        try:
            values[key.removeprefix("shared-")] = convert(kargs[0].text)
        except ValueError as exc:
            fail(kargs[0], f"welcome {key}: {exc}")
            ok = False
    if "shared-password-file" in lines:
        ptok, pargs = lines["shared-password-file"]
        if len(pargs) != 1:
            fail(pargs[1], f"found {pargs[1].shown()}, expected one file after "
                           f"welcome shared-password-file")
            ok = False
        else:
            values["password_file"] = os.path.normpath(os.path.join(dbhome, pargs[0].text))
            values["password_pos"] = Pos(file, ptok.line, ptok.col)
    if not ok:
        return None
    values.setdefault("shards", 16 if cluster else 1)
    return SharedConfig(urls=tuple(checked), pos=Pos(file, kw.line, kw.col), cluster=cluster,
                        **values)  # type: ignore[arg-type]

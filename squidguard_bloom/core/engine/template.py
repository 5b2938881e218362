"""squidGuard redirect templates: ``[NNN:]URL`` with ``%`` substitutions.

Codes, as squidGuard 1.6 expands them:

====  =================================================================
%a    client address as sent            %n  client FQDN ("" if none)
%i    ident / user, lower-cased         %s  source (acl) name
%t    the pass-list word that decided   %u  the requested URL (ORIG)
%p    the URL after its host's "/"      %f  the URL after its last "/" ("" if none)
%q    quota info ("noquota") then %n, as squidGuard's missing ``break`` does
====  =================================================================

Any other ``%x`` (``%%`` too) and a trailing ``%`` stay literal, as in
squidGuard.  Unlike squidGuard, substituted values are made safe: control
characters, spaces, quotes, ``<``, ``>``, backslash and non-ASCII bytes are
%-encoded, so no request can inject a space, quote or line break into a
reply (or markup into a block page).  ``%u`` is cut at 2048 bytes, as in
squidGuard.
"""

from __future__ import annotations

import re

from squidguard_bloom.records import FrozenRecord

#: Statuses Squid accepts in ``OK status=``; anything else it ignores,
#: which would let a blocked request through.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_STATUS_PREFIX = re.compile(r"(\d{3}):")
_UNSAFE = re.compile(rb"[\x00-\x20\x7f-\xff\"'<>\\`]")
_CODE = re.compile(r"%(.)", re.S)
URL_LIMIT = 2048


class TemplateValues(FrozenRecord):
    """What a template can refer to, for one request."""

    client: str = ""
    fqdn: str = ""
    user: str = ""
    source: str = "default"
    target: str = "unknown"
    url: str = ""  # ORIG: decoded, original case


def safe(value: str) -> str:
    """value with every byte that could break a reply or a page %-encoded."""
    raw = value.encode("utf-8", "surrogateescape")
    if not _UNSAFE.search(raw):
        return value
    return _UNSAFE.sub(lambda m: b"%%%02X" % m.group()[0], raw).decode("ascii")


def _path_after_host(url: str) -> str:
    start = url.find("//")
    if start < 0:
        return ""
    slash = url.find("/", start + 2)
    return "" if slash < 0 else url[slash + 1 :]


def _after_last_slash(url: str) -> str:
    # squidGuard: nothing when there is no "/" at all (a CONNECT's host:port)
    return url[url.rfind("/") + 1 :] if "/" in url else ""


def _values(v: TemplateValues) -> dict[str, str]:
    url = v.url.encode("utf-8", "surrogateescape")[:URL_LIMIT].decode("utf-8", "surrogateescape")
    return {
        "a": v.client,
        "n": v.fqdn,
        "i": v.user.lower(),
        "s": v.source,
        "t": v.target,
        "u": url,
        "p": _path_after_host(v.url),
        "f": _after_last_slash(v.url),
        "q": "noquota" + v.fqdn,
    }


def split_status(template: str) -> tuple[int | None, str]:
    """(status or None, the rest) of a template: how expand reads a ``NNN:`` prefix."""
    m = _STATUS_PREFIX.match(template)
    if not m:
        return None, template
    status = int(m.group(1))
    return (status if status in REDIRECT_STATUSES else 302), template[m.end() :]


def expand(template: str, values: TemplateValues) -> tuple[int | None, str]:
    """Expand template; return (status or None, url).

    ``302:http://…`` gives (302, url) — answered as a redirect; a template
    without a status prefix gives (None, url), which squidGuard answers as
    ``rewrite-url``.  A prefix Squid would refuse (e.g. ``200:``) becomes 302,
    so a block can never silently turn into a pass.
    """
    status, template = split_status(template)
    if "%" not in template:
        return status, template
    table = _values(values)

    def sub(code: re.Match[str]) -> str:
        value = table.get(code.group(1))
        return code.group() if value is None else safe(value)

    return status, _CODE.sub(sub, template)

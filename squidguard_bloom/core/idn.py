"""Internationalised host names: one ASCII spelling for every host and list entry.

Browsers and Squid send an internationalised name in its punycode form
(``xn--bcher-kva.example``), while admins write list entries the way they
read them (``bücher.example``, ``BÜCHER.example``, or with a full-width dot);
a hand-made request can also carry the Unicode form.  Hosts and entries are
therefore compared in one form, the one a browser puts on the wire: UTS #46
processing as the WHATWG URL Standard does it (non-transitional, so ``ß``
stays ``ß``; ``_`` and other non-STD3 ASCII allowed), then each label that is
not ASCII becomes ``xn--`` and its punycode.

UTS #46 first maps the name (case folding, compatibility forms such as
full-width letters, and the full-width and ideographic full stops U+FF0E,
U+3002 and U+FF61 to ``.``) and puts it in NFC.  Its mapping table comes from
the ``idna`` package.  An ASCII name is already canonical once lower-cased,
so callers import this module (and it imports ``idna``) only for the first
name that is not ASCII: the helper's start and its ASCII requests load
neither.

Checks that only make a browser *refuse* a name (hyphen positions, bidi,
joiners, label lengths) are not applied: refusing would leave the name as
Unicode, and the punycode a less careful client may send would then be
missed.  A name that UTS #46 cannot map at all (a disallowed or unassigned
code point, bytes that were not UTF-8) or whose mapping yields a character
no host may hold (the full-width colon becomes ``:``) is returned unchanged,
and looked up as it is (docs/differences.md).
"""

from __future__ import annotations

#: Longer names are not mapped: a DNS name holds 253 characters at most, and
#: this bounds the work a hostile request line can cause.
MAX_NAME = 1024

# ASCII characters no host may contain (the URL Standard's forbidden domain
# code points); a name whose mapping produces one is left as it was.
_FORBIDDEN = frozenset("".join(map(chr, range(0x21))) + "\x7f#%/:<>?@[\\]^|")
# The same IDN host comes back request after request; bounded, since hostile
# request lines can bring any number of different names.
_cache: dict[str, str] = {}
_CACHE_MAX = 4096


def ascii_host(name: str) -> str:
    """The canonical ASCII form of a lower-cased host name or domain entry.

    An ASCII name is returned as it is; so is a name that cannot be encoded.
    """
    if name.isascii():
        return name
    found = _cache.get(name)
    if found is None:
        found = _encode(name)
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[name] = found
    return found


def _encode(name: str) -> str:
    """UTS #46 mapping, then punycode for each label that is not ASCII; name if that fails."""
    if len(name) > MAX_NAME:
        return name
    import idna  # noqa: PLC0415 - loaded for the first name that is not ASCII only

    try:
        mapped = idna.uts46_remap(name, std3_rules=False)
    except (UnicodeError, ValueError):  # idna.IDNAError is a UnicodeError
        return name
    labels = mapped.split(".")
    for i, label in enumerate(labels):
        if label.isascii():
            continue
        if label.startswith("xn--"):  # an A-label prefix on a label that is not one
            return name
        labels[i] = "xn--" + label.encode("punycode").decode("ascii")
    out = ".".join(labels)
    if not out.strip(".") or not _FORBIDDEN.isdisjoint(out):
        return name
    return out

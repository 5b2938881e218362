"""Canonical Bloom filter keys for clients.

Squid may spell one client several ways over its lifetime (an IPv4 address
seen through a dual-stack socket as ``::ffff:10.0.0.1``, IPv6 in upper or
lower case, zero-padded octets typed by an admin).  Every spelling of one
address must give one key, or the client is welcomed twice.

- IPv4 → its 4 packed bytes.  Octets are read as decimal even with leading
  zeros (``010.0.0.1`` is 10.0.0.1, the admin's meaning, not inet_aton's
  octal 8.0.0.1); short forms such as ``10.1`` are refused.
- IPv6 → its 16 packed bytes; an IPv4-mapped address (``::ffff:a.b.c.d``)
  → the 4 bytes of its IPv4 address.  Brackets and a ``%zone`` are dropped.
- A user name → ``b"\\xffuser:"`` + UTF-8 of the lower-cased name.  That is
  never 4 bytes long, and a 16-byte key starting with 0xff would be an IPv6
  multicast address, which is never a client's source address, so user keys
  never collide with address keys.
"""

from __future__ import annotations

import socket

_USER_TAG = b"\xffuser:"


def address_key(text: str) -> bytes:
    """The packed canonical key of a textual IPv4/IPv6 address.

    Raises ValueError (naming the text) when it is not an address.
    """
    try:
        return socket.inet_pton(socket.AF_INET, text)  # the common case: ~0.1 µs
    except (OSError, UnicodeEncodeError):  # a byte that was not UTF-8: no address either
        pass
    except TypeError:
        msg = f"client address must be str, not {type(text).__name__}"
        raise TypeError(msg) from None
    s = text.strip()
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
    if ":" in s:
        s = s.split("%", 1)[0]
        try:
            packed = socket.inet_pton(socket.AF_INET6, s)
        except (OSError, UnicodeEncodeError):
            raise ValueError(f"not an IP address: {text!r}") from None
        if packed[:12] == b"\0" * 10 + b"\xff\xff":
            return packed[12:]
        return packed
    parts = s.split(".")
    if len(parts) == 4 and all(p.isdigit() and p.isascii() and len(p) <= 4 for p in parts):
        octets = [int(p, 10) for p in parts]
        if all(o <= 255 for o in octets):
            return bytes(octets)
    raise ValueError(f"not an IP address: {text!r}")


def user_key(name: str) -> bytes:
    """The key of an authenticated user name (case-insensitive, as squidGuard compares)."""
    return _USER_TAG + name.lower().encode("utf-8", "surrogateescape")

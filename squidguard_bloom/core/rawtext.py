"""How request bytes are carried as text: one rule, from the wire to every output.

Squid sends bytes, and a URL, user name or client field may hold any byte
but the newline: Latin-1 letters, half a UTF-8 sequence, ``%ff`` that
decodes to a lone ``0xff``.  squidGuard-format lists and configurations are
bytes too.  The rule, everywhere:

* **In**: bytes are decoded as UTF-8 with ``surrogateescape`` (:func:`text`):
  valid UTF-8 becomes its characters, and each byte that is not part of
  valid UTF-8 becomes one lone surrogate, U+DC80 to U+DCFF.  Nothing raises,
  nothing is lost, and ASCII (nearly every request) costs nothing extra.
* **Out**: text is encoded back the same way (:func:`raw`), so a reply, a
  rewritten URL or a log line carries the very bytes the request had
  (reply quoting and template ``%``-encoding then work on those bytes: a
  lone ``0xff`` shows as ``%FF``, never as a character it never was).
* **Regular expressions** (RE2 takes only valid Unicode): the text is handed
  over through :func:`for_regex`, which replaces each escaped byte by one
  private-use character, U+10FF80 to U+10FFFF (byte ``0xNN`` by U+10FFNN).
  One character for one, so match positions are positions in the original
  text (rewrites slice the original, which keeps the bytes); ``.`` and
  ``[^/]`` match such a byte as squidGuard's byte-wise regex does (so a
  stray byte cannot hide a match), and a pattern naming the byte (a list in
  Latin-1) matches exactly that byte, as the same function maps patterns.
"""

from __future__ import annotations

#: Lone surrogates of surrogateescape (bytes 0x80-0xff) -> private use U+10FF80-U+10FFFF.
_TO_REGEX = {0xDC00 + b: 0x10FF00 + b for b in range(0x80, 0x100)}


def text(raw: bytes) -> str:
    """Bytes from the wire (or a list, or the config) as text; never raises."""
    return raw.decode("utf-8", "surrogateescape")


def raw(value: str) -> bytes:
    """The bytes text() was given, exactly."""
    return value.encode("utf-8", "surrogateescape")


def for_regex(value: str) -> str:
    """value as RE2 can take it: each escaped byte one private-use character.

    Same length as value, index for index.  Free for ASCII text.
    """
    if value.isascii():
        return value
    return value.translate(_TO_REGEX)

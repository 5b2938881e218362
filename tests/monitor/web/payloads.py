"""Hostile values for the escaping tests: each would run script if it reached the page as HTML.

Every payload sets ``window.__xss`` (or calls alert) if it ever runs. None holds a space
(log fields are space-separated); control characters are part of the set.
"""

from __future__ import annotations

import re

URLS = (
    "http://xss.example/<script>window.__xss=1</script>",
    'http://xss.example/"onmouseover="window.__xss=2"x=',
    "javascript:window.__xss=3//",
    "http://xss.example/</textarea><img/src=x/onerror=window.__xss=4>",
    "http://xss.example/\x1b[31mred\x07\x08\x7f\u202egnp.exe",
    "http://<svg/onload=window.__xss=5>/",
)
USERS = (
    "<script>window.__xss=6</script>",
    '"onmouseover="window.__xss=7',
    "javascript:alert(8)",
    "</textarea><svg/onload=window.__xss=9>",
    "bob\x1b[2J\x00",
)
CATEGORY = "<b\tonmouseover=window.__xss=10>cat"
PROXY = "<img src=x onerror=window.__xss=11>"

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """What the dashboard shows for text: control characters as \\xNN, the rest as is (a NUL
    was stored by ingest as U+FFFD, which PostgreSQL text can hold)."""
    text = text.replace("\x00", "\ufffd")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# Checks run in the page: no payload ran, and no table cell holds an element.
NO_SCRIPT_RAN = "return [window.__xss === undefined, typeof window.__xss];"
CELLS_WITH_ELEMENTS = (
    "return [...document.querySelectorAll('td, dd, h2, .user')]"
    ".filter(e => e.children.length > 0).map(e => e.outerHTML);")

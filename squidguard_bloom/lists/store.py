"""Opening lists: compiled form when fresh, else the text file."""

from __future__ import annotations

from squidguard_bloom.lists.errors import ListError
from squidguard_bloom.lists.lookup import DomainList, ExpressionList, UrlList

KINDS = ("domain", "url", "expression")


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "surrogateescape")
    except OSError as exc:
        msg = (f"{path}: cannot read list ({exc.strerror}); check that it exists and that "
               "the user running the helper (proxy under Squid) may read it")
        raise ListError(msg) from exc


def open_list(kind: str, path: str) -> DomainList | UrlList | ExpressionList:
    """The list of that kind at path, ready for lookups."""
    if kind == "domain":
        return DomainList(path, _read(path))
    if kind == "url":
        return UrlList(path, _read(path))
    if kind == "expression":
        return ExpressionList(path, _read(path))
    raise ValueError(f"unknown list kind {kind!r}; expected one of {KINDS}")


def compile_list(kind: str, path: str) -> str:
    """Write the compiled form of a domain or url list; return its path."""
    raise ListError(f"{path}: compiled lists are not available yet")

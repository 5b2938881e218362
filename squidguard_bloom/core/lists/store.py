"""Opening lists: the compiled form when it matches the text, else the text."""

from __future__ import annotations

import os

from squidguard_bloom.core.lists import compiled
from squidguard_bloom.core.lists.errors import ListError
from squidguard_bloom.core.lists.lookup import DomainList, ExpressionList, UrlList

KINDS = ("domain", "url", "expression")
AnyList = DomainList | UrlList | ExpressionList | compiled.CompiledDomainList \
    | compiled.CompiledUrlList


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "surrogateescape")
    except OSError as exc:
        msg = (f"{path}: cannot read list ({exc.strerror}); check that it exists and that "
               "the user running the helper (proxy under Squid) may read it")
        raise ListError(msg) from exc


def _compiled(kind: str, path: str, notes: list[str]) -> AnyList | None:
    """The compiled list if usable; a stale one is rebuilt when its directory is writable."""
    if not os.path.exists(compiled.compiled_path(path)):
        return None
    try:
        mm = compiled.check(kind, path)
    except compiled.StaleError as why:
        if not os.access(os.path.dirname(compiled.compiled_path(path)) or ".", os.W_OK):
            notes.append(f"{why}; not writable here, so the text list is used "
                         f"(run squidguard-bloom -C {path} as its owner)")
            return None
        from squidguard_bloom.core.lists import writer  # noqa: PLC0415 - only a rebuild writes

        try:
            writer.write(kind, path)
            mm = compiled.check(kind, path)
        except (OSError, ListError, compiled.StaleError) as exc:
            notes.append(f"{why}; rebuilding it failed ({exc}), so the text list is used")
            return None
        notes.append(f"{why}: rebuilt")
    cls = compiled.CompiledDomainList if kind == "domain" else compiled.CompiledUrlList
    return cls(path, mm)


def open_list(kind: str, path: str, notes: list[str] | None = None) -> AnyList:
    """The list of that kind at path, ready for lookups; notes gets what to tell the admin."""
    notes = [] if notes is None else notes
    if kind in ("domain", "url"):
        found = _compiled(kind, path, notes)
        if found is not None:
            return found
        text = _read(path)
        return DomainList(path, text) if kind == "domain" else UrlList(path, text)
    if kind == "expression":
        return ExpressionList(path, _read(path))
    raise ValueError(f"unknown list kind {kind!r}; expected one of {KINDS}")


def compile_list(kind: str, path: str) -> str:
    """Write the compiled form of a domain or url list; return its path."""
    if kind not in ("domain", "url"):
        raise ValueError(f"only domain and url lists are compiled, not {kind!r}")
    from squidguard_bloom.core.lists import writer  # noqa: PLC0415 - only -C writes

    try:
        return writer.write(kind, path)
    except OSError as exc:
        msg = (f"{path}: cannot compile ({exc.strerror}: {exc.filename}); the compiled file "
               "goes next to the list, so its directory must be writable")
        raise ListError(msg) from exc

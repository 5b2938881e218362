"""After parsing: check names, resolve paths, read iplist/userlist files.

squidGuard needs every name defined before its use; list files must exist
and be readable (else it goes into emergency mode); an unreadable iplist or
userlist is logged and skipped.  Relative list paths are taken from dbhome
(itself relative to the current directory), relative log files from logdir.
"""

from __future__ import annotations

import os

from squidguard_bloom.core.config.addresses import read_iplist, read_userlist
from squidguard_bloom.core.config.errors import ConfigError
from squidguard_bloom.core.config.extensions import build_welcome
from squidguard_bloom.core.config.lexer import Token
from squidguard_bloom.core.config.model import Config, Dest, Diagnostic, LogSpec, Pos, Source
from squidguard_bloom.core.config.parser import FileRef, Parser

_BLOCK = {"time": "time", "src": "src", "dest": "dest", "rewrite": "rew"}


def _abs(base: str, path: str) -> str:
    return os.path.normpath(os.path.join(base, path))  # join keeps an absolute path


def _check_refs(p: Parser) -> None:
    tables: dict[str, dict[str, object]] = {
        "time": p.times, "src": p.sources, "dest": p.dests, "rewrite": p.rewrites,  # type: ignore[dict-item]
    }
    for ref in p.refs:
        found = tables[ref.kind].get(ref.name)
        if found is None:
            p.fail(ref.tok, f"{ref.kind} {ref.name!r} is not defined; add a "
                            f"'{_BLOCK[ref.kind]} {ref.name} {{ … }}' block above this line "
                            "or fix the name")
        elif not ref.defined_before:
            line = found.pos.line  # type: ignore[attr-defined]
            # squidGuard 1.6 goes into emergency mode (no filtering) here; we
            # filter, and say what squidGuard would make of the file.
            p.warn(ref.tok, f"{ref.kind} {ref.name!r} is used before its definition at line "
                            f"{line}: accepted, but squidGuard 1.6 refuses it (emergency mode); "
                            "move that block up if squidGuard must read this file too")


def _list_file(p: Parser, f: FileRef, dbhome: str) -> None:
    dest = f.owner
    assert isinstance(dest, Dest)
    path = (os.path.join(dbhome, "dest", dest.name, f.kind) if f.tok.text == "-"
            else _abs(dbhome, f.tok.text))
    setattr(dest, f.kind, path)
    if os.path.isfile(path) and os.access(path, os.R_OK):
        return
    why = "does not exist" if not os.path.exists(path) else "cannot be read"
    p.fail(f.tok, f"{f.kind} {path} {why}; create it, fix the path (a relative path is taken "
                  f"from dbhome {dbhome}), or make it readable by the user the helper runs as")


def _source_file(p: Parser, f: FileRef, dbhome: str) -> None:
    src = f.owner
    assert isinstance(src, Source)
    path = _abs(dbhome, f.tok.text)
    try:
        if f.kind == "userlist":
            src.users.update(read_userlist(path))
            return
        entries, problems = read_iplist(path)
    except OSError as exc:
        p.warn(f.tok, f"{f.kind} {path} cannot be read ({exc.strerror}); it is ignored, as "
                      "squidGuard does: fix the path or the permissions")
        return
    src.ips.extend(entries)
    src.has_ip = bool(src.ips)
    for line, col, message in problems:
        p.diags.append(Diagnostic(Pos(path, line, col), f"{message} (in the iplist named at "
                                                        f"{p.file}:{f.tok.line})"))


def _inactive_warnings(p: Parser) -> None:
    for src in p.sources.values():
        if not src.has_content:
            p.warn(Token("word", src.name, src.pos.line, src.pos.col),
                   f"src {src.name} has no ip, domain or user: it never matches "
                   "(squidGuard: missing active content, set inactive)")
    for dest in p.dests.values():
        if not dest.has_content:
            p.warn(Token("word", dest.name, dest.pos.line, dest.pos.col),
                   f"dest {dest.name} has no list, redirect or rewrite: pass lists skip it "
                   "(squidGuard: missing active content, set inactive)")


def finish(p: Parser, dbhome_default: str, logdir_default: str) -> Config:
    """The Config of a parsed file; raises ConfigError listing every error."""
    dbhome = os.path.abspath(p.settings["dbhome"].text if "dbhome" in p.settings
                             else dbhome_default)
    logdir = os.path.abspath(p.settings["logdir"].text if "logdir" in p.settings
                             else logdir_default)
    _check_refs(p)
    for f in p.files:
        if f.kind == "log":
            f.owner.log = LogSpec(_abs(logdir, f.tok.text), "anonymous" in f.flags,  # type: ignore[attr-defined]
                                  "verbose" in f.flags)
        elif f.kind in ("iplist", "userlist"):
            _source_file(p, f, dbhome)
        else:
            _list_file(p, f, dbhome)
    _inactive_warnings(p)
    welcome = None
    if p.welcome is not None and p.welcome_tok is not None:
        welcome, problems = build_welcome(p.file, p.welcome_tok, p.welcome, dbhome, logdir)
        p.diags += problems
    errors = [d for d in p.diags if d.severity == "error"]
    if errors:
        order = {p.file: 0}
        errors.sort(key=lambda d: (order.get(d.pos.file, 1), d.pos.file, d.pos.line, d.pos.col))
        raise ConfigError(errors, emergency=p.emergency)
    return Config(p.file, dbhome, logdir, p.times, list(p.sources.values()), p.dests,
                  p.rewrites, p.acls, welcome, p.emergency,
                  [d for d in p.diags if d.severity == "warning"])

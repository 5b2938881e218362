"""squidGuard.conf -> :class:`~squidguard_bloom.config.model.Config`.

A statement is a keyword and its arguments up to the end of the line (or a
``}``); blocks are ``KEYWORD NAME { … }``.  Errors do not stop the parser:
it skips to the next line and goes on, so every error of a file is
reported at once, each with file:line:column, the token found and what was
expected.  Names are resolved (and list files checked) after the whole
file is read, against its final ``dbhome`` and ``logdir``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from pathlib import Path

from squidguard_bloom.config import timespec
from squidguard_bloom.config.lexer import (
    EOF,
    LBRACE,
    NL,
    RBRACE,
    RULE,
    STRING,
    WORD,
    Token,
    tokenize,
)
from squidguard_bloom.config.model import (
    OUTSIDE,
    WITHIN,
    Acl,
    AclBranch,
    Config,
    Dest,
    Diagnostic,
    IPEntry,
    LogSpec,
    PassItem,
    Pos,
    Restriction,
    Rewrite,
    RewriteRule,
    Source,
    TimeElement,
    TimeSpec,
    WelcomeConfig,
)
from squidguard_bloom.errors import SquidguardBloomError

#: squidGuard keywords we read and ignore (each use gives a warning).
IGNORED = frozenset({
    "syslog", "ldapbinddn", "ldapbindpass", "ldapcachetime", "ldapprotover",
    "mysqlusername", "mysqlpassword", "mysqldb", "userquota", "execuserlist",
    "ldapusersearch", "ldapipsearch", "userquery", "verbose",
})
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ConfigError(SquidguardBloomError):
    """A configuration that cannot be used; ``diagnostics`` holds every error."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class _Parser:
    def __init__(self, path: str, text: str) -> None:
        self.file = path
        self.tokens, problems = tokenize(text)
        self.i = 0
        self.diags: list[Diagnostic] = []
        for line, col, msg in problems:
            self.diags.append(Diagnostic(Pos(path, line, col), msg))
        self.dbhome: tuple[str, Token] | None = None
        self.logdir: tuple[str, Token] | None = None
        self.times: dict[str, TimeSpec] = {}
        self.sources: list[Source] = []
        self.dests: dict[str, Dest] = {}
        self.rewrites: dict[str, Rewrite] = {}
        self.acls: list[Acl] = []
        self.acl_seen = False
        self.welcome: dict[str, tuple[list[Token], Token]] | None = None
        self.welcome_pos: Pos | None = None
        self.emergency: str | None = None
        # references to check once everything is read: (kind, name, token)
        self.refs: list[tuple[str, str, Token]] = []
        # list files: (dest, attribute, raw path, token)
        self.list_paths: list[tuple[Dest, str, str, Token]] = []
        self.log_specs: list[tuple[object, str, list[Token]]] = []
        self.file_reads: list[tuple[Source, str, str, Token]] = []

    # -- token helpers --------------------------------------------------

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != EOF:
            self.i += 1
        return tok

    def pos(self, tok: Token) -> Pos:
        return Pos(self.file, tok.line, tok.col)

    def error(self, tok: Token, expected: str) -> None:
        self.diags.append(Diagnostic(self.pos(tok), f"found {tok.shown()}, expected {expected}"))

    def fail(self, tok: Token, message: str) -> None:
        self.diags.append(Diagnostic(self.pos(tok), message))

    def warn(self, tok: Token, message: str) -> None:
        self.diags.append(Diagnostic(self.pos(tok), message, "warning"))

    def skip_newlines(self) -> None:
        while self.peek().kind == NL:
            self.i += 1

    def args(self) -> list[Token]:
        """The rest of the statement: words up to the line end or a brace."""
        out: list[Token] = []
        while self.peek().kind in (WORD, STRING, RULE):
            out.append(self.next())
        return out

    def end_statement(self) -> None:
        tok = self.peek()
        if tok.kind in (NL, EOF, RBRACE):
            return
        self.error(tok, "the end of the line")
        while self.peek().kind not in (NL, EOF, RBRACE):
            self.next()

    def name(self, what: str) -> Token | None:
        tok = self.peek()
        if tok.kind in (WORD, STRING):
            return self.next()
        self.error(tok, what)
        return None

    def open_block(self) -> bool:
        self.skip_newlines()
        tok = self.peek()
        if tok.kind == LBRACE:
            self.next()
            return True
        self.error(tok, "'{'")
        self.recover_block()
        return False

    def recover_block(self) -> None:
        """After a bad block header: skip to the end of that block, if any."""
        while self.peek().kind not in (EOF, LBRACE, RBRACE) and self.peek().kind != NL:
            self.next()
        if self.peek().kind == LBRACE:
            self.next()
            self.block(lambda kw, args: None)

    def block(self, statement: Callable[[Token, list[Token]], None]) -> None:
        """Statements up to the closing brace; statement(keyword, args) handles each."""
        while True:
            self.skip_newlines()
            tok = self.peek()
            if tok.kind == RBRACE:
                self.next()
                return
            if tok.kind == EOF:
                self.error(tok, "'}' to close the block")
                return
            if tok.kind == LBRACE:
                self.error(tok, "a keyword")
                self.next()
                continue
            kw = self.next()
            args = self.args()
            statement(kw, args)
            self.end_statement()

    # -- top level --------------------------------------------------------

    def parse(self) -> None:
        while True:
            self.skip_newlines()
            tok = self.peek()
            if tok.kind == EOF:
                return
            if tok.kind != WORD:
                self.error(tok, "a keyword (dbhome, logdir, time, src, dest, rewrite, acl)")
                self.next()
                continue
            kw = self.next()
            handler = _TOP.get(kw.text)
            if handler is not None:
                handler(self, kw)
            elif kw.text in IGNORED:
                self.warn(kw, f"'{kw.text}' is not supported by squidguard-bloom and is ignored")
                self.args()
            else:
                self.error(kw, "a keyword (dbhome, logdir, time, src, dest, rewrite, acl, "
                               "welcome, emergency)")
                self.args()
            self.end_statement()

    def setting(self, kw: Token) -> None:
        args = self.args()
        if len(args) != 1:
            self.error(args[1] if len(args) > 1 else self.peek(), f"one path after {kw.text}")
            return
        current = self.dbhome if kw.text == "dbhome" else self.logdir
        if current is not None:
            self.fail(kw, f"{kw.text} is set twice (first at line {current[1].line}); keep one")
            return
        value = (args[0].text, kw)
        if kw.text == "dbhome":
            self.dbhome = value
        else:
            self.logdir = value

    def emergency_setting(self, kw: Token) -> None:
        args = self.args()
        words = [a.text for a in args]
        if words == ["pass"] or (len(words) == 2 and words[0] == "block"):
            self.emergency = " ".join(words)
        else:
            self.error(args[0] if args else self.peek(), "'pass' or 'block URL' after emergency")

    def define(self, kw: Token, table: dict[str, object] | None, names: list[str]) -> Token | None:
        tok = self.name(f"a name after {kw.text}")
        if tok is None:
            self.recover_block()
            return None
        taken = tok.text in names if table is None else tok.text in table
        if taken:
            self.fail(tok, f"{kw.text} {tok.text!r} is defined twice; rename one")
        return tok

    # -- time ---------------------------------------------------------------

    def time_block(self, kw: Token) -> None:
        tok = self.define(kw, self.times, [])  # type: ignore[arg-type]
        if tok is None or not self.open_block():
            return
        spec = TimeSpec(tok.text, [], self.pos(tok))

        def statement(k: Token, args: list[Token]) -> None:
            words = [a.text for a in args]
            try:
                if k.text == "weekly":
                    split = next((n for n, w in enumerate(words) if timespec.is_time_range(w)),
                                 len(words))
                    if split == 0:
                        self.error(args[0] if args else k, "weekdays (e.g. mtwhf or saturday)")
                        return
                    days = timespec.parse_weekdays(words[:split])
                    ranges = [timespec.parse_times(w) for w in words[split:]] or [timespec.ALL_DAY]
                    spec.elements += [TimeElement(days, None, None, a, b) for a, b in ranges]
                elif k.text == "date":
                    if not words:
                        self.error(self.peek(), "a date YYYY-MM-DD")
                        return
                    first, last = timespec.parse_date(words[0])
                    ranges = ([timespec.parse_times(w) for w in words[1:]]
                              or [timespec.DATE_DAY])
                    spec.elements += [TimeElement(None, first, last, a, b) for a, b in ranges]
                else:
                    self.error(k, "weekly or date")
            except ValueError as exc:
                self.fail(k, str(exc))

        self.block(statement)
        self.times[tok.text] = spec

    # -- src ----------------------------------------------------------------

    def restriction(self, k: Token, args: list[Token]) -> Restriction | None:
        if len(args) != 1:
            self.error(args[1] if len(args) > 1 else self.peek(), f"one time name after {k.text}")
            return None
        self.refs.append(("time", args[0].text, args[0]))
        return Restriction(WITHIN if k.text == "within" else OUTSIDE, args[0].text)

    def log_spec(self, owner: object, k: Token, args: list[Token]) -> None:
        flags = [a for a in args[:-1] if a.text in ("anonymous", "verbose")]
        if not args or args[-1].text in ("anonymous", "verbose") or len(flags) != len(args) - 1:
            self.error(args[-1] if args else self.peek(),
                       f"[anonymous] [verbose] FILE after {k.text}")
            return
        self.log_specs.append((owner, "log", args))

    def src_block(self, kw: Token) -> None:
        tok = self.define(kw, None, [s.name for s in self.sources])
        if tok is None or not self.open_block():
            return
        src = Source(tok.text, self.pos(tok))

        def statement(k: Token, args: list[Token]) -> None:
            word = k.text
            if word == "ip":
                src.has_ip = True
                for a in args:
                    for part in filter(None, a.text.split(",")):
                        try:
                            src.ips.append(parse_ip(part))
                        except ValueError as exc:
                            self.fail(a, str(exc))
                if not args:
                    self.error(self.peek(), "addresses after ip")
            elif word in ("iplist", "userlist"):
                if len(args) != 1:
                    self.error(args[1] if args else self.peek(), f"one file after {word}")
                    return
                if word == "iplist":
                    src.has_ip = True
                else:
                    src.has_user = True
                self.file_reads.append((src, word, args[0].text, args[0]))
            elif word == "user":
                src.has_user = True
                src.users.update(a.text.lower() for a in args)
            elif word == "domain":
                src.domains.extend(a.text for a in args)
            elif word in ("within", "outside"):
                src.restriction = self.restriction(k, args)
            elif word in ("log", "logfile"):
                self.log_spec(src, k, args)
            elif word in ("continue", "continuous"):
                src.cont = True
            elif word in IGNORED:
                self.warn(k, f"'{word}' is not supported by squidguard-bloom and is ignored")
            else:
                self.error(k, "ip, iplist, domain, user, userlist, within, outside, "
                              "logfile or continue")

        self.block(statement)
        if not (src.has_ip or src.domains or src.has_user):
            self.warn(tok, f"src {src.name} has no ip, domain or user: it never matches "
                           "(squidGuard sets it inactive)")
        self.sources.append(src)

    # -- dest ---------------------------------------------------------------

    def dest_block(self, kw: Token) -> None:
        tok = self.define(kw, self.dests, [])  # type: ignore[arg-type]
        if tok is None or not self.open_block():
            return
        dest = Dest(tok.text, self.pos(tok))

        def statement(k: Token, args: list[Token]) -> None:
            word = k.text
            if word in ("domainlist", "urllist", "expressionlist"):
                if len(args) != 1:
                    self.error(args[1] if len(args) > 1 else self.peek(), f"one file after {word}")
                    return
                self.list_paths.append((dest, word, args[0].text, args[0]))
            elif word == "redirect":
                if len(args) != 1:
                    self.error(args[1] if len(args) > 1 else self.peek(), "one URL after redirect")
                    return
                dest.redirect = args[0].text
            elif word == "rewrite":
                if len(args) != 1:
                    self.error(args[1] if len(args) > 1 else self.peek(), "a rewrite name")
                    return
                dest.rewrite = args[0].text
                self.refs.append(("rewrite", args[0].text, args[0]))
            elif word in ("within", "outside"):
                dest.restriction = self.restriction(k, args)
            elif word in ("log", "logfile"):
                self.log_spec(dest, k, args)
            else:
                self.error(k, "domainlist, urllist, expressionlist, redirect, rewrite, within, "
                              "outside or logfile")

        self.block(statement)
        self.dests[dest.name] = dest

    # -- rewrite ------------------------------------------------------------

    def rewrite_block(self, kw: Token) -> None:
        tok = self.define(kw, self.rewrites, [])  # type: ignore[arg-type]
        if tok is None or not self.open_block():
            return
        rw = Rewrite(tok.text, self.pos(tok))

        def statement(k: Token, args: list[Token]) -> None:
            if k.kind == RULE:
                rule = parse_rule(k.text)
                if rule is None:
                    self.error(k, "a rule s@REGEX@REPLACEMENT@FLAGS (flags: g i r R)")
                else:
                    rw.rules.append(RewriteRule(rule[0], rule[1], rule[2], self.pos(k)))
                for a in args:
                    self.error(a, "the end of the line")
            elif k.text in ("within", "outside"):
                rw.restriction = self.restriction(k, args)
            elif k.text in ("log", "logfile"):
                self.log_spec(rw, k, args)
            else:
                self.error(k, "a rule s@REGEX@REPLACEMENT@FLAGS, within, outside or logfile")

        self.block(statement)
        self.rewrites[rw.name] = rw

    # -- acl ------------------------------------------------------------------

    def acl_block(self, kw: Token) -> None:
        if self.acl_seen:
            self.fail(kw, "a second acl block; squidGuard allows one: merge them")
        self.acl_seen = True
        if not self.open_block():
            return
        while True:
            self.skip_newlines()
            tok = self.peek()
            if tok.kind == RBRACE:
                self.next()
                break
            if tok.kind == EOF:
                self.error(tok, "'}' to close the acl block")
                return
            if tok.kind not in (WORD, STRING):
                self.error(tok, "a source name or default")
                self.next()
                continue
            name = self.next()
            restriction = None
            if self.peek().kind == WORD and self.peek().text in ("within", "outside"):
                k = self.next()
                t = self.name("a time name")
                if t is not None:
                    restriction = self.restriction(k, [t])
            if name.text != "default":
                self.refs.append(("src", name.text, name))
            if not self.open_block():
                continue
            branch = self.acl_branch(name)
            other = None
            save = self.i
            self.skip_newlines()
            if self.peek().kind == WORD and self.peek().text == "else":
                self.next()
                if self.open_block():
                    other = self.acl_branch(name)
            else:
                self.i = save
            self.acls.append(Acl(name.text, branch, restriction, other))
        if not any(a.source == "default" for a in self.acls):
            self.fail(kw, "the acl block has no 'default' entry; add: default { pass all } "
                          "(or none) with a redirect")

    def acl_branch(self, owner: Token) -> AclBranch:
        branch = AclBranch(self.pos(owner))

        def statement(k: Token, args: list[Token]) -> None:
            word = k.text
            if word == "pass":
                branch.passes = []
                for a in args:
                    for part in filter(None, a.text.split(",")):
                        negate = part.startswith("!")
                        w = part[1:] if negate else part
                        w = "all" if w == "any" else w
                        if w.startswith("dnsbl"):
                            self.warn(a, f"'{part}' (DNS blacklists) is not supported by "
                                         "squidguard-bloom and is ignored")
                            continue
                        if w not in ("all", "none", "in-addr"):
                            self.refs.append(("dest", w, a))
                        branch.passes.append(PassItem(w, negate))
            elif word == "redirect":
                if len(args) != 1:
                    self.error(args[1] if args else self.peek(), "one URL (or default)")
                    return
                branch.redirect = args[0].text
            elif word == "rewrite":
                if len(args) != 1:
                    self.error(args[1] if args else self.peek(), "a rewrite name or none")
                    return
                branch.rewrite = args[0].text
                if args[0].text != "none":
                    self.refs.append(("rewrite", args[0].text, args[0]))
            elif word in ("log", "logfile"):
                if owner.text != "default":
                    self.warn(k, "logfile is only honoured in the default acl; ignored here "
                                 "(as squidGuard does)")
                else:
                    self.log_spec(branch, k, args)
            else:
                self.error(k, "pass, redirect, rewrite or logfile")

        self.block(statement)
        return branch

    # -- welcome --------------------------------------------------------------

    def welcome_block(self, kw: Token) -> None:
        if self.welcome is not None:
            self.fail(kw, "a second welcome block; keep one")
        if not self.open_block():
            return
        self.welcome = {}
        self.welcome_pos = self.pos(kw)
        known = ("redirect", "key", "capacity", "error", "state", "window", "status",
                 "exempt", "log", "logfile")

        def statement(k: Token, args: list[Token]) -> None:
            if k.text not in known:
                self.error(k, "one of " + ", ".join(known))
                return
            if not args:
                self.error(self.peek(), f"a value after {k.text}")
                return
            assert self.welcome is not None
            self.welcome[k.text] = (args, k)

        self.block(statement)


_TOP: dict[str, Callable[[_Parser, Token], None]] = {
    "dbhome": _Parser.setting,
    "logdir": _Parser.setting,
    "emergency": _Parser.emergency_setting,
    "time": _Parser.time_block,
    "src": _Parser.src_block,
    "source": _Parser.src_block,
    "dest": _Parser.dest_block,
    "destination": _Parser.dest_block,
    "rew": _Parser.rewrite_block,
    "rewrite": _Parser.rewrite_block,
    "acl": _Parser.acl_block,
    "welcome": _Parser.welcome_block,
}


def parse_ip(text: str) -> IPEntry:
    """One ``ip`` value: address, CIDR, address/netmask or range."""
    try:
        if "-" in text and "/" not in text:
            lo_text, hi_text = text.split("-", 1)
            lo, hi = ipaddress.ip_address(lo_text), ipaddress.ip_address(hi_text)
            if lo.version != hi.version or int(lo) > int(hi):
                raise ValueError("reversed")
            return IPEntry("range", int(lo), int(hi), lo.version)
        if "/" in text:
            addr_text, bits = text.split("/", 1)
            addr = ipaddress.ip_address(addr_text)
            width = 32 if addr.version == 4 else 128
            if bits.isdigit():
                if not 0 <= int(bits) <= width:
                    raise ValueError("prefix")
                mask = ((1 << width) - 1) ^ ((1 << (width - int(bits))) - 1)
                return IPEntry("mask", int(addr) & mask, mask, addr.version)
            netmask = ipaddress.ip_address(bits)
            # squidGuard does not mask the address: with host bits set it never matches.
            return IPEntry("mask", int(addr), int(netmask), addr.version)
        addr = ipaddress.ip_address(text)
        width = 32 if addr.version == 4 else 128
        return IPEntry("mask", int(addr), (1 << width) - 1, addr.version)
    except ValueError:
        raise ValueError(
            f"bad address {text!r}: expected A.B.C.D, A.B.C.D/NN, A.B.C.D/M.M.M.M or "
            "A.B.C.D-E.F.G.H (IPv6 forms too)") from None


def parse_rule(text: str) -> tuple[str, str, str] | None:
    """``s@REGEX@REPL@FLAGS`` -> (regex, replacement, flags); ``\\@``/``\\}`` unescaped."""
    parts: list[str] = []
    cur: list[str] = []
    i = 2
    while i < len(text) and len(parts) < 2:
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in "@}":
            cur.append(text[i + 1])
            i += 2
            continue
        if c == "@":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if len(parts) < 2 or i > len(text) or text[i - 1] != "@":
        return None
    flags = text[i:]
    if any(f not in "girR" for f in flags):
        return None
    return parts[0], parts[1], flags


def parse_duration(text: str) -> float:
    """``90``, ``45s``, ``30m``, ``12h``, ``30d``, ``2w`` -> seconds."""
    m = _DURATION.fullmatch(text)
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"bad duration {text!r}: expected a number with s, m, h, d or w")
    return float(m.group(1)) * _SECONDS[m.group(2)]


def read_iplist(path: str) -> tuple[list[IPEntry], list[str]]:
    """Entries of an iplist file in squidGuard's format, and problems (file:line)."""
    out: list[IPEntry] = []
    problems: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, 1):
            if raw.startswith("#"):
                continue
            line = raw.split("#", 1)[0]
            for token in re.split(r"[ \t,\r\n]+", line):
                if not token:
                    continue
                m = re.match(r"[0-9a-fA-F.:/-]+", token)
                if m is None:
                    break
                try:
                    out.append(parse_ip(m.group()))
                except ValueError as exc:
                    problems.append(f"{path}:{number}: {exc}")
    return out, problems


def read_userlist(path: str) -> set[str]:
    """Lower-cased user names of a userlist file (passwd-style lines give their first field)."""
    users: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            if raw.startswith("#"):
                continue
            line = raw.split("#", 1)[0]
            if ":" in line:
                line = line.split(":", 1)[0]
            users.update(t.lower() for t in re.split(r"[ \t,\r\n]+", line) if t)
    return users


def _resolve(base: str, path: str) -> str:
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))


def finish(p: _Parser, dbhome_default: str, logdir_default: str) -> Config:
    """Resolve names and paths, read iplist/userlist files, check list files."""
    dbhome = os.path.abspath(p.dbhome[0] if p.dbhome else dbhome_default)
    logdir = os.path.abspath(p.logdir[0] if p.logdir else logdir_default)
    tables: dict[str, object] = {
        "time": p.times, "dest": p.dests, "rewrite": p.rewrites,
        "src": {s.name: s for s in p.sources},
    }
    for kind, name, tok in p.refs:
        if name not in tables[kind]:  # type: ignore[operator]
            p.fail(tok, f"{kind} {name!r} is not defined; define it in a '{kind} {name} {{ … }}'"
                        " block or fix the name")
    for dest, attr, raw, tok in p.list_paths:
        kind = attr
        path = (os.path.join(dbhome, "dest", dest.name, kind) if raw == "-"
                else _resolve(dbhome, raw))
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            why = "does not exist" if not os.path.exists(path) else "cannot be read"
            p.fail(tok, f"{kind} {path} {why}; create it, fix the path (relative paths are "
                        f"taken from dbhome {dbhome}), or make it readable by the helper's user")
        setattr(dest, attr, path)
    for src, kind, raw, tok in p.file_reads:
        path = _resolve(dbhome, raw)
        try:
            if kind == "iplist":
                entries, problems = read_iplist(path)
                src.ips.extend(entries)
                for problem in problems:
                    p.warn(tok, f"{problem} (entry ignored)")
            else:
                src.users.update(read_userlist(path))
        except OSError as exc:
            p.warn(tok, f"{kind} {path}: {exc.strerror}; ignored (as squidGuard does)")
    for owner, _attr, args in p.log_specs:
        flags = {a.text for a in args[:-1]}
        spec = LogSpec(_resolve(logdir, args[-1].text), "anonymous" in flags, "verbose" in flags)
        owner.log = spec  # type: ignore[attr-defined]
    welcome = _welcome(p, dbhome, logdir) if p.welcome is not None else None
    errors = [d for d in p.diags if d.severity == "error"]
    if errors:
        raise ConfigError(sorted(errors, key=lambda d: (d.pos.line, d.pos.col)))
    return Config(p.file, dbhome, logdir, p.times, p.sources, p.dests, p.rewrites, p.acls,
                  welcome, p.emergency, [d for d in p.diags if d.severity == "warning"])


def _welcome(p: _Parser, dbhome: str, logdir: str) -> WelcomeConfig | None:
    w = p.welcome
    assert w is not None and p.welcome_pos is not None
    values: dict[str, object] = {}

    def one(key: str) -> tuple[str, Token] | None:
        if key not in w:
            return None
        args = w[key][0]
        if len(args) != 1 and key != "exempt":
            p.error(args[1], f"one value after {key}")
            return None
        return args[0].text, args[0]

    if "redirect" not in w:
        p.fail(Token(WORD, "welcome", p.welcome_pos.line, p.welcome_pos.col),
               "the welcome block needs a redirect URL (the welcome page)")
        return None
    converters: dict[str, Callable[[str], object]] = {
        "capacity": _positive_int,
        "error": _rate,
        "window": parse_duration,
        "status": _status,
        "key": lambda s: _choice(s, ("ip", "user")),
        "state": lambda s: _resolve(dbhome, s),
        "redirect": str,
    }
    for key, conv in converters.items():
        got = one(key)
        if got is None:
            continue
        try:
            values[key] = conv(got[0])
        except ValueError as exc:
            p.fail(got[1], f"welcome {key}: {exc}")
    if "exempt" in w:
        values["exempt_hosts"] = frozenset(a.text.lower().rstrip(".") for a in w["exempt"][0])
    for key in ("log", "logfile"):
        if key in w:
            args = w[key][0]
            flags = {a.text for a in args[:-1]}
            values["log"] = LogSpec(_resolve(logdir, args[-1].text), "anonymous" in flags,
                                    "verbose" in flags)
    try:
        return WelcomeConfig(pos=p.welcome_pos, **values)  # type: ignore[arg-type]
    except TypeError:
        return None


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
        raise ValueError(f"expected a false-positive rate between 0 and 1, found {text!r}")
    return value


def _status(text: str) -> int:
    if text not in ("301", "302", "303", "307", "308"):
        raise ValueError(f"expected 301, 302, 303, 307 or 308, found {text!r}")
    return int(text)


def _choice(text: str, options: tuple[str, ...]) -> str:
    if text not in options:
        raise ValueError(f"expected one of {', '.join(options)}, found {text!r}")
    return text


def load_config(path: str | os.PathLike[str], *, dbhome: str = "/var/lib/squidguard/db",
                logdir: str = "/var/log/squidguard") -> Config:
    """Read and check a squidGuard.conf; raise ConfigError listing every error."""
    name = os.fspath(path)
    try:
        text = Path(name).read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        diag = Diagnostic(Pos(name, 0, 0), f"cannot read the configuration: {exc.strerror}; "
                                          "check the path given with -c")
        raise ConfigError([diag]) from exc
    p = _Parser(name, text)
    p.parse()
    if not p.acl_seen:
        last = p.tokens[-1]
        p.fail(last, "no acl block; squidGuard needs one with a default entry, e.g. "
                     "acl { default { pass all } }")
    return finish(p, dbhome, logdir)

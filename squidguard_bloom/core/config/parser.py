"""squidGuard.conf syntax: tokens -> blocks, names and raw values.

A statement is a keyword and its words up to the end of the line (or a
``}``); blocks are ``KEYWORD NAME { … }``.  An error does not stop the
parser: it notes a :class:`Diagnostic` (file:line:col, the token found,
what was expected), skips to the next line and goes on, so one run finds
every error of a file.  Files named by the configuration are read and
names are checked afterwards, by :mod:`squidguard_bloom.core.config.resolve`.

A brace too few or too many is one error, not one per line that follows:
a line inside a block that can only start something of an enclosing level
(``acl {`` inside a dest, the next acl entry inside an acl entry) ends the
block with "is a '}' missing before it?" and parsing goes on at that level;
a block's statement found just after the block closed, before a '}' of its
own, reopens it with "is that '}' one too many?".
"""

from __future__ import annotations

from collections.abc import Callable

from squidguard_bloom.core.config.addresses import parse_ip, split_ip_words
from squidguard_bloom.core.config.lexer import (
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
from squidguard_bloom.core.config.model import (
    OUTSIDE,
    WITHIN,
    Acl,
    AclBranch,
    Dest,
    Diagnostic,
    PassItem,
    Pos,
    Restriction,
    Rewrite,
    RewriteRule,
    Source,
    TimeSpec,
)
from squidguard_bloom.core.config.words import NAME, name_problem, redirect_problem
from squidguard_bloom.records import Record

#: squidGuard keywords we read and ignore, each use giving a warning.
IGNORED_TOP = frozenset({
    "syslog", "ldapbinddn", "ldapbindpass", "ldapcachetime", "ldapprotover",
    "mysqlusername", "mysqlpassword", "mysqldb",
})
IGNORED_SRC = frozenset({"userquota", "execuserlist", "ldapusersearch", "ldapipsearch",
                         "userquery"})
TOP_KEYWORDS = "dbhome, logdir, time, src, dest, rewrite, acl, welcome or emergency"
LIST_KINDS = ("domainlist", "urllist", "expressionlist")
WELCOME_KEYS = ("redirect", "key", "capacity", "error", "state", "window", "status",
                "exempt", "log", "logfile", "shared", "shared-user", "shared-password-file",
                "shared-deadline", "shared-fallback", "shared-shards", "shared-prefix")
#: The keywords of each block's statements (a rewrite block's rules are RULE tokens).
DEST_KEYS = frozenset({*LIST_KINDS, "redirect", "rewrite", "within", "outside", "log",
                       "logfile"})
SRC_KEYS = frozenset({"ip", "iplist", "userlist", "user", "domain", "within", "outside", "log",
                      "logfile", "continue", "continuous", *IGNORED_SRC})
TIME_KEYS = frozenset({"weekly", "date"})
REWRITE_KEYS = frozenset({"within", "outside", "log", "logfile"})
BRANCH_KEYS = frozenset({"pass", "redirect", "rewrite", "log", "logfile"})

Statement = Callable[[Token, list[Token]], None]


class Ref(Record):
    """A use of a name, checked once the whole file is read."""

    kind: str  # "time", "src", "dest" or "rewrite"
    name: str
    tok: Token
    defined_before: bool  # squidGuard has no forward references


class FileRef(Record):
    """A file named in the configuration, read or checked afterwards."""

    owner: object  # Dest, Source, or the thing a log belongs to
    kind: str  # domainlist/urllist/expressionlist, iplist/userlist, or log
    tok: Token  # the path as written
    flags: frozenset[str] = frozenset()  # anonymous/verbose for logs


class Closed(Record):
    """The block whose '}' was just read, in case that '}' turns out to be one too many."""

    what: str  # "dest ads", "acl", "acl entry kids"
    brace: Token  # the '}' that closed it
    keys: frozenset[str] | None  # its statement keywords; None: the acl's body (entries)
    resume: Callable[[], None]  # parses the rest of its body, up to the next '}'


def _one(args: list[Token]) -> Token | None:
    return args[0] if len(args) == 1 else None


class Parser:
    """Reads one file's tokens; results stay in the attributes below."""

    def __init__(self, path: str, text: str) -> None:
        self.file = path
        self.tokens, problems = tokenize(text)
        self.i = 0
        self.diags = [Diagnostic(Pos(path, line, col), msg) for line, col, msg in problems]
        self.settings: dict[str, Token] = {}  # dbhome/logdir -> the value token
        self.times: dict[str, TimeSpec] = {}
        self.sources: dict[str, Source] = {}
        self.dests: dict[str, Dest] = {}
        self.rewrites: dict[str, Rewrite] = {}
        self.acls: list[Acl] = []
        self.acl_tok: Token | None = None
        self.welcome: dict[str, tuple[Token, list[Token]]] | None = None
        self.welcome_tok: Token | None = None
        self.emergency: str | None = None
        self.refs: list[Ref] = []
        self.files: list[FileRef] = []
        # Brace recovery: the blocks open now (what, its first token), the level to
        # return to after a missing '}', the acl body's level, the block just closed.
        self.nesting: list[tuple[str, Token]] = []
        self.unwind: int | None = None
        self.acl_depth: int | None = None
        self.just_closed: Closed | None = None
        self.src_names = {b.text for a, b in zip(self.tokens, self.tokens[1:], strict=False)
                          if a.kind == WORD and a.text in ("src", "source")}

    # -- diagnostics ----------------------------------------------------

    def pos(self, tok: Token) -> Pos:
        return Pos(self.file, tok.line, tok.col)

    def expected(self, tok: Token, what: str) -> None:
        """``found 'TOKEN', expected WHAT`` at tok."""
        self.diags.append(Diagnostic(self.pos(tok), f"found {tok.shown()}, expected {what}"))

    def fail(self, tok: Token, message: str) -> None:
        self.diags.append(Diagnostic(self.pos(tok), message))

    def warn(self, tok: Token, message: str) -> None:
        self.diags.append(Diagnostic(self.pos(tok), message, "warning"))

    # -- tokens -----------------------------------------------------------

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != EOF:
            self.i += 1
        return tok

    def skip_newlines(self) -> None:
        while self.peek().kind == NL:
            self.i += 1

    def words(self) -> list[Token]:
        """The rest of the statement: words up to the line end or a brace."""
        out: list[Token] = []
        while self.peek().kind in (WORD, STRING, RULE):
            out.append(self.next())
        return out

    def end_statement(self) -> None:
        if self.peek().kind not in (NL, EOF, RBRACE):
            self.expected(self.peek(), "the end of the line")
            while self.peek().kind not in (NL, EOF, RBRACE):
                self.next()

    def wrong_count(self, args: list[Token], what: str) -> None:
        """Report the first surplus word, or the line end when a word is missing."""
        self.expected(args[1] if len(args) > 1 else self.peek(), what)

    def open_block(self, opened: Token) -> bool:
        header_line = self.tokens[self.i - 1].line if self.i else 0
        self.skip_newlines()
        if self.peek().kind == LBRACE:
            self.next()
            return True
        tok = self.peek()
        self.expected(tok, "'{'")
        if tok.kind == EOF or tok.line == header_line:
            self.skip_bad_block()
        elif tok.kind == RBRACE:
            self.next()  # an empty body, without its '{'
        elif self.outer_level(tok, len(self.nesting) + 1) is None:
            # Only the brace is missing: the body follows on the next lines.
            # Skip it up to its '}' so that one mistake gives one error.
            self.block("", opened, None)
        return False

    def skip_bad_block(self) -> None:
        """After a bad block header: skip the rest of its line and its { … }, if any."""
        while self.peek().kind not in (EOF, LBRACE, RBRACE, NL):
            self.next()
        if self.peek().kind == LBRACE:
            self.block("", self.next(), None)

    def block(self, what: str, opened: Token, statement: Statement | None,
              keys: frozenset[str] = frozenset()) -> None:
        """Statements up to the closing brace; statement(keyword, words) handles each.

        what and opened (its first token) name the block in messages; keys are
        its statement keywords. With statement None the block is skipped
        without a word (its header was already reported).
        """
        self.nesting.append((what, opened))
        try:
            self._body(what, opened, statement, keys)
        finally:
            self.nesting.pop()

    def _body(self, what: str, opened: Token, statement: Statement | None,
              keys: frozenset[str]) -> None:
        while True:
            self.skip_newlines()
            tok = self.peek()
            if tok.kind == RBRACE:
                self.next()
                if statement is not None:
                    self.just_closed = Closed(what, tok, keys,
                                              lambda: self.block(what, opened, statement, keys))
                return
            if tok.kind == EOF:
                if statement is not None:
                    self.fail(tok, f"found the end of file, expected '}}' to close {what} "
                                   f"(opened at line {opened.line})")
                return
            if tok.kind == LBRACE:
                if statement is not None:
                    self.expected(tok, "a keyword")
                self.block("", self.next(), None)
                if self.unwind is not None:
                    return
                continue
            if self.missing_brace(tok, what if statement is not None else None, opened):
                return
            kw = self.next()
            if statement is None:
                while self.peek().kind not in (NL, EOF, RBRACE, LBRACE):
                    self.next()
            else:
                before = len(self.diags)
                statement(kw, self.words())
                if self.peek().kind != LBRACE:
                    self.end_statement()
                elif len(self.diags) == before:
                    self.expected(self.peek(), "the end of the line")
            if self.peek().kind == LBRACE:
                # A block where none belongs, reported once: skip it whole.
                self.block("", self.next(), None)
                if self.unwind is not None:
                    return

    # -- brace recovery ---------------------------------------------------

    def header_at(self, j: int) -> bool:
        """Whether the line from token j on is a block header: words, then '{'."""
        while self.tokens[j].kind in (WORD, STRING, RULE):
            j += 1
        return self.tokens[j].kind == LBRACE

    def outer_level(self, tok: Token, depth: int) -> int | None:
        """The level (count of open blocks) a line starting with tok belongs to, when that
        is outside the ``depth`` blocks open: 0 for a top-level keyword, the acl's body for
        an acl entry. None when the line may belong where it is."""
        if tok.kind != WORD:
            return None
        header = self.header_at(self.i)
        acl = self.acl_depth
        if tok.text in _TOP or tok.text in IGNORED_TOP:
            if tok.text == "rewrite" and not header:
                return None  # the rewrite statement of a dest or an acl entry
            if tok.text == "welcome" and acl is not None and tok.text in self.src_names:
                target = acl  # an acl entry for a src named welcome
            else:
                target = 0
        elif (acl is not None and header
              and (tok.text == "else" or name_problem(tok.text) is None)):
            target = acl
        else:
            return None
        return target if target < depth else None

    def missing_brace(self, tok: Token, what: str | None, opened: Token) -> bool:
        """At a line starting with tok inside the block what: if the line belongs to an
        enclosing level, report the missing '}' (unless what is None) and unwind to it."""
        target = self.outer_level(tok, len(self.nesting))
        if target is None:
            return False
        if what is not None:
            self.fail(tok, f"{tok.shown()} inside {what} (opened at line {opened.line}); "
                           "is a '}' missing before it?")
        self.unwind = target
        return True

    def unwound(self) -> bool:
        """After a nested block returned: True when this level must return too."""
        if self.unwind is None:
            return False
        if self.unwind < len(self.nesting):
            return True
        self.unwind = None
        return False

    def reopen(self, tok: Token, closed: Closed | None) -> bool:
        """tok, at the level of a block that just closed, is one of that block's statements,
        and a '}' comes before anything that opens a block: the '}' that closed it was
        one too many. Report it and parse the rest of the block."""
        if closed is None or not self.belongs(tok, closed) or not self.brace_ahead():
            return False
        self.fail(tok, f"{tok.shown()} after the end of {closed.what} (closed at line "
                       f"{closed.brace.line}); is that '}}' one too many?")
        closed.resume()
        self.unwound()
        return True

    def belongs(self, tok: Token, closed: Closed) -> bool:
        header = self.header_at(self.i)
        if closed.keys is None:  # the acl's body: entries NAME [within|outside T] {
            return (tok.kind == WORD and header and tok.text not in _TOP
                    and name_problem(tok.text) is None)
        if header:
            return False
        return tok.kind == RULE or (tok.kind == WORD and tok.text in closed.keys)

    def brace_ahead(self) -> bool:
        """Whether a '}' with no '{' of its own comes before the next top-level block."""
        depth = 0
        start = True
        for j in range(self.i, len(self.tokens)):
            t = self.tokens[j]
            if t.kind == EOF:
                return False
            if t.kind == LBRACE:
                depth += 1
            elif t.kind == RBRACE:
                if depth == 0:
                    return True
                depth -= 1
            elif (start and depth == 0 and t.kind == WORD
                  and (t.text in _TOP or t.text in IGNORED_TOP)
                  and (t.text != "rewrite" or self.header_at(j))):
                return False
            start = t.kind == NL
        return False

    # -- values -------------------------------------------------------------

    def name_ok(self, tok: Token, *, quoted: bool = False) -> bool:
        """Whether tok may be a name (or, with quoted, a quoted path)."""
        if tok.kind == STRING:
            if quoted:
                return True
            self.expected(tok, "a name (squidGuard takes no quotes here)")
            return False
        problem = name_problem(tok.text)
        if problem is not None:
            self.expected(tok, problem)
            return False
        return True

    def path(self, k: Token, args: list[Token], *, dash: bool = False) -> Token | None:
        """The one path after k (quoted or a name; ``-`` too when dash)."""
        tok = _one(args)
        if tok is None:
            self.wrong_count(args, f"one file name after {k.text}")
            return None
        if dash and tok.kind == WORD and tok.text == "-":
            return tok
        return tok if self.name_ok(tok, quoted=True) else None

    def define(self, kw: Token, taken: dict[str, object]) -> Token | None:
        """The NAME of ``KEYWORD NAME {``; None (block skipped) when it is unusable."""
        tok = self.peek()
        if tok.kind not in (WORD, STRING):
            self.expected(tok, f"a name after {kw.text}")
            self.skip_bad_block()
            return None
        self.next()
        if not self.name_ok(tok):
            self.skip_bad_block()
            return None
        if tok.text in taken:
            first = taken[tok.text].pos  # type: ignore[attr-defined]
            self.fail(tok, f"{kw.text} {tok.text!r} is defined twice (first at line "
                           f"{first.line}); rename or merge one")
        return tok

    def ref(self, kind: str, tok: Token, table: dict[str, object]) -> None:
        self.refs.append(Ref(kind, tok.text, tok, tok.text in table))

    def restriction(self, k: Token, args: list[Token]) -> Restriction | None:
        tok = _one(args)
        if tok is None:
            self.wrong_count(args, f"one time name after {k.text}")
            return None
        if not self.name_ok(tok):
            return None
        self.ref("time", tok, self.times)  # type: ignore[arg-type]
        return Restriction(WITHIN if k.text == "within" else OUTSIDE, tok.text)

    def log(self, owner: object, k: Token, args: list[Token]) -> None:
        """``log|logfile [anonymous] [verbose] FILE``: the file is resolved later."""
        flags = [a.text for a in args[:-1]]
        if not args or any(f not in ("anonymous", "verbose") for f in flags):
            bad = next((a for a in args[:-1] if a.text not in ("anonymous", "verbose")),
                       self.peek())
            self.expected(bad, f"[anonymous] [verbose] FILE after {k.text}")
            return
        path = self.path(k, args[-1:])
        if path is not None:
            self.files.append(FileRef(owner, "log", path, frozenset(flags)))

    def redirect(self, k: Token, args: list[Token]) -> str | None:
        tok = _one(args)
        if tok is None:
            self.wrong_count(args, f"one URL after {k.text}")
            return None
        problem = ("a redirect URL (squidGuard takes no quotes here)" if tok.kind == STRING
                   else redirect_problem(tok.text))
        if problem is not None:
            self.expected(tok, problem)
            return None
        return tok.text

    # -- top level --------------------------------------------------------

    def parse(self) -> None:
        """Read the whole file."""
        while True:
            self.skip_newlines()
            tok = self.peek()
            closed, self.just_closed = self.just_closed, None
            if tok.kind == EOF:
                break
            if tok.kind == RBRACE:
                self.next()
                after = (f" ({closed.what} was closed at line {closed.brace.line})"
                         if closed is not None else "")
                self.fail(tok, f"'}}' closes no block{after}; is it one too many?")
                continue
            if self.reopen(tok, closed):
                continue
            kw = self.next()
            handler = _TOP.get(kw.text) if kw.kind == WORD else None
            if handler is not None:
                handler(self, kw)
            elif kw.kind == WORD and kw.text in IGNORED_TOP:
                self.warn(kw, f"'{kw.text}' is ignored by squidguard-bloom (not implemented)")
                self.words()
            else:
                self.expected(kw, f"a keyword ({TOP_KEYWORDS})")
                self.skip_bad_block()
            if self.unwind is None:
                self.end_statement()
            self.unwind = None  # the line that ended an unclosed block starts the next round
        if self.acl_tok is None:
            self.fail(self.peek(), "found the end of file, expected an acl block; add one with "
                                   "a default entry, e.g.: acl { default { pass all } }")
        elif not any(a.source == "default" for a in self.acls):
            self.fail(self.acl_tok, "the acl block has no 'default' entry; add one, e.g.: "
                                    "default { pass all }")

    def setting(self, kw: Token) -> None:
        args = self.words()
        tok = self.path(kw, args)
        if tok is None:
            return
        if kw.text in self.settings:
            self.fail(kw, f"{kw.text} is set twice (first at line "
                          f"{self.settings[kw.text].line}); keep one")
            return
        self.settings[kw.text] = tok

    def emergency_setting(self, kw: Token) -> None:
        args = self.words()
        words = [a.text for a in args]
        if words == ["pass"] or (len(words) == 2 and words[0] == "block"):
            self.emergency = " ".join(words)
        else:
            self.expected(args[0] if args else self.peek(), "'pass' or 'block URL' after "
                                                            "emergency")

    def time_block(self, kw: Token) -> None:
        from squidguard_bloom.core.config import timespec  # noqa: PLC0415 - only time blocks need it

        tok = self.define(kw, self.times)  # type: ignore[arg-type]
        if tok is None or not self.open_block(kw):
            return
        spec = TimeSpec(tok.text, [], self.pos(tok))

        def statement(k: Token, args: list[Token]) -> None:
            read = {"weekly": timespec.parse_weekly, "date": timespec.parse_date}.get(k.text)
            if read is None or k.kind != WORD:
                self.expected(k, "weekly or date")
                return
            try:
                spec.elements += read([a.text for a in args])
            except timespec.TimeSyntaxError as exc:
                at = args[exc.arg] if exc.arg is not None else self.peek()
                if exc.found:
                    self.expected(at, str(exc))
                else:
                    self.fail(at, str(exc))

        self.block(f"{kw.text} {tok.text}", kw, statement, TIME_KEYS)
        self.times.setdefault(tok.text, spec)

    def src_block(self, kw: Token) -> None:
        tok = self.define(kw, self.sources)  # type: ignore[arg-type]
        if tok is None or not self.open_block(kw):
            return
        src = Source(tok.text, self.pos(tok))

        def statement(k: Token, args: list[Token]) -> None:
            word = k.text if k.kind == WORD else ""
            if word == "ip":
                self.ips(src, args)
            elif word in ("iplist", "userlist"):
                path = self.path(k, args)
                if path is not None:
                    self.files.append(FileRef(src, word, path))
                    src.has_user = src.has_user or word == "userlist"
            elif word in ("user", "domain"):
                if not args:
                    self.expected(self.peek(), f"one or more names after {word}")
                good = [a.text for a in args if self.name_ok(a, quoted=True)]
                if word == "user":
                    src.has_user = True
                    src.users.update(u.lower() for u in good)
                else:
                    src.domains.extend(good)
            elif word in ("within", "outside"):
                src.restriction = self.restriction(k, args)
            elif word in ("log", "logfile"):
                self.log(src, k, args)
            elif word in ("continue", "continuous"):
                src.cont = True
                if args:
                    self.expected(args[0], "the end of the line")
            elif word in IGNORED_SRC:
                self.warn(k, f"'{word}' is ignored by squidguard-bloom (not implemented)")
            else:
                self.expected(k, "ip, iplist, domain, user, userlist, within, outside, "
                                 "logfile or continue")

        self.block(f"{kw.text} {tok.text}", kw, statement, SRC_KEYS)
        self.sources.setdefault(src.name, src)

    def ips(self, src: Source, args: list[Token]) -> None:
        if not args:
            self.expected(self.peek(), "addresses after ip")
        for n, text in split_ip_words([a.text for a in args]):
            try:
                src.ips.append(parse_ip(text))
            except ValueError as exc:
                self.fail(args[n], str(exc))
        src.has_ip = bool(src.ips)

    def dest_block(self, kw: Token) -> None:
        tok = self.define(kw, self.dests)  # type: ignore[arg-type]
        if tok is None or not self.open_block(kw):
            return
        dest = Dest(tok.text, self.pos(tok))

        def statement(k: Token, args: list[Token]) -> None:
            word = k.text if k.kind == WORD else ""
            if word in LIST_KINDS:
                path = self.path(k, args, dash=True)
                if path is not None:
                    self.files.append(FileRef(dest, word, path))
            elif word == "redirect":
                dest.redirect = self.redirect(k, args) or dest.redirect
            elif word == "rewrite":
                name = _one(args)
                if name is None:
                    self.wrong_count(args, "one rewrite name")
                elif self.name_ok(name):
                    dest.rewrite = name.text
                    self.ref("rewrite", name, self.rewrites)  # type: ignore[arg-type]
            elif word in ("within", "outside"):
                dest.restriction = self.restriction(k, args)
            elif word in ("log", "logfile"):
                self.log(dest, k, args)
            else:
                self.expected(k, "domainlist, urllist, expressionlist, redirect, rewrite, "
                                 "within, outside or logfile")

        self.block(f"{kw.text} {tok.text}", kw, statement, DEST_KEYS)
        self.dests.setdefault(dest.name, dest)

    def rewrite_block(self, kw: Token) -> None:
        tok = self.define(kw, self.rewrites)  # type: ignore[arg-type]
        if tok is None or not self.open_block(kw):
            return
        rw = Rewrite(tok.text, self.pos(tok))

        def statement(k: Token, args: list[Token]) -> None:
            if k.kind == RULE:
                self.rule(rw, k)
                if args:
                    self.expected(args[0], "the end of the line (one rule per line)")
            elif k.text in ("within", "outside"):
                rw.restriction = self.restriction(k, args)
            elif k.text in ("log", "logfile"):
                self.log(rw, k, args)
            else:
                self.expected(k, "a rule s@REGEX@REPLACEMENT@FLAGS, within, outside or logfile")

        self.block(f"{kw.text} {tok.text}", kw, statement, REWRITE_KEYS)
        self.rewrites.setdefault(rw.name, rw)

    def rule(self, rw: Rewrite, k: Token) -> None:
        if NAME.fullmatch(k.text):
            # squidGuard's lexer takes such a rule for a name: a syntax error there.
            self.expected(k, "a rule holding a character squidGuard cannot read as a name "
                             "(e.g. ^ $ ( [ \\ or a blank); write s@^…@…@")
            return
        parsed = parse_rule(k.text)
        if parsed is None:
            self.expected(k, "a rule s@REGEX@REPLACEMENT@FLAGS (\\@ for @; flags of g i r R)")
            return
        rw.rules.append(RewriteRule(*parsed, self.pos(k)))

    def acl_block(self, kw: Token) -> None:
        if self.acl_tok is not None:
            self.fail(kw, f"a second acl block (the first is at line {self.acl_tok.line}); "
                          "merge them into one")
        else:
            self.acl_tok = kw
        if self.open_block(kw):
            self.acl_body(kw)

    def acl_body(self, kw: Token) -> None:
        """The acl's entries up to its closing brace."""
        self.nesting.append(("acl", kw))
        outer_acl, self.acl_depth = self.acl_depth, len(self.nesting)
        try:
            while True:
                self.skip_newlines()
                tok = self.peek()
                closed, self.just_closed = self.just_closed, None
                if tok.kind == RBRACE:
                    self.next()
                    self.just_closed = Closed("acl", tok, None, lambda: self.acl_body(kw))
                    return
                if tok.kind == EOF:
                    self.fail(tok, f"found the end of file, expected '}}' to close acl "
                                   f"(opened at line {kw.line})")
                    return
                if self.missing_brace(tok, "acl", kw):
                    return
                if self.reopen(tok, closed):
                    continue
                self.acl_entry()
                if self.unwound():
                    return
        finally:
            self.nesting.pop()
            self.acl_depth = outer_acl

    def acl_entry(self) -> None:
        name = self.next()
        if name.kind != WORD or not self.name_ok(name):
            if name.kind != WORD:
                self.expected(name, "a source name or default")
            self.skip_bad_block()
            return
        restriction = None
        if self.peek().kind == WORD and self.peek().text in ("within", "outside"):
            k = self.next()
            t = self.peek()
            if t.kind == WORD:
                restriction = self.restriction(k, [self.next()])
            else:
                self.expected(t, f"a time name after {k.text}")
        if name.text != "default":
            self.ref("src", name, self.sources)  # type: ignore[arg-type]
        if not self.open_block(name):
            return
        branch = self.acl_branch(name, f"acl entry {name.text}", name)
        other = None
        if self.unwound():
            self.acls.append(Acl(name.text, branch, restriction, other))
            return
        save = self.i
        self.skip_newlines()
        if self.peek().kind == WORD and self.peek().text == "else":
            word = self.next()
            if self.open_block(word):
                other = self.acl_branch(name, f"else of acl entry {name.text}", word)
        else:
            self.i = save
        self.acls.append(Acl(name.text, branch, restriction, other))

    def acl_branch(self, owner: Token, what: str, opened: Token) -> AclBranch:
        branch = AclBranch(self.pos(owner))

        def statement(k: Token, args: list[Token]) -> None:
            word = k.text if k.kind == WORD else ""
            if word == "pass":
                branch.passes = self.pass_list(args)
            elif word == "redirect":
                branch.redirect = self.redirect(k, args) or branch.redirect
            elif word == "rewrite":
                name = _one(args)
                if name is None:
                    self.wrong_count(args, "one rewrite name, or none")
                elif self.name_ok(name):
                    branch.rewrite = name.text
                    if name.text != "none":
                        self.ref("rewrite", name, self.rewrites)  # type: ignore[arg-type]
            elif word in ("log", "logfile"):
                if owner.text == "default":
                    self.log(branch, k, args)
                else:
                    self.warn(k, f"{word} is only honoured in the default acl; ignored here, "
                                 "as squidGuard does (set it on the src block instead)")
            else:
                self.expected(k, "pass, redirect, rewrite or logfile")

        self.block(what, opened, statement, BRANCH_KEYS)
        return branch

    def pass_list(self, args: list[Token]) -> list[PassItem]:
        items: list[PassItem] = []
        if not args:
            self.expected(self.peek(), "dest names, all, any, none or in-addr after pass")
        for a in args:
            # A "," glued to a name separates, unlike squidGuard (docs/_diff_config.md).
            for part in filter(None, a.text.split(",")):
                negate = part.startswith("!")
                word = part[1:] if negate else part
                if word == "any":
                    word = "all"
                if word == "dnsbl" or word.startswith("dnsbl:"):
                    self.warn(a, f"'{part}' (a DNS blacklist) is ignored by squidguard-bloom "
                                 "(not implemented); the pass list goes on without it")
                    continue
                if word not in ("all", "none", "in-addr"):
                    if problem := name_problem(word):
                        self.expected(a, problem)
                        continue
                    self.ref("dest", Token(a.kind, word, a.line, a.col), self.dests)  # type: ignore[arg-type]
                items.append(PassItem(word, negate))
        return items

    def welcome_block(self, kw: Token) -> None:
        if self.welcome_tok is not None:
            self.fail(kw, f"a second welcome block (the first is at line "
                          f"{self.welcome_tok.line}); keep one")
        if not self.open_block(kw):
            return
        lines: dict[str, tuple[Token, list[Token]]] = {}

        def statement(k: Token, args: list[Token]) -> None:
            if k.kind != WORD or k.text not in WELCOME_KEYS:
                self.expected(k, "one of " + ", ".join(WELCOME_KEYS))
            elif not args:
                self.expected(self.peek(), f"a value after {k.text}")
            elif k.text in lines:
                self.fail(k, f"welcome {k.text} is set twice (first at line "
                             f"{lines[k.text][0].line}); keep one")
            else:
                lines[k.text] = (k, args)

        self.block(kw.text, kw, statement, frozenset(WELCOME_KEYS))
        if self.welcome_tok is None:
            self.welcome, self.welcome_tok = lines, kw


_TOP: dict[str, Callable[[Parser, Token], None]] = {
    "dbhome": Parser.setting,
    "logdir": Parser.setting,
    "emergency": Parser.emergency_setting,
    "time": Parser.time_block,
    "src": Parser.src_block,
    "source": Parser.src_block,
    "dest": Parser.dest_block,
    "destination": Parser.dest_block,
    "rew": Parser.rewrite_block,
    "rewrite": Parser.rewrite_block,
    "acl": Parser.acl_block,
    "welcome": Parser.welcome_block,
}


def parse_rule(text: str) -> tuple[str, str, str] | None:
    """``s@REGEX@REPL@FLAGS`` -> (regex, replacement, flags), with ``\\@``/``\\}`` undone."""
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
    flags = text[i:]
    if len(parts) < 2 or any(f not in "girR" for f in flags):
        return None
    return parts[0], parts[1], flags

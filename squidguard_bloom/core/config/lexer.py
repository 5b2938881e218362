"""Tokens of squidGuard.conf, with their line and column.

``#`` starts a comment anywhere; blanks separate words; ``{`` and ``}`` are
tokens of their own; a line end is a token (statements are one per line);
``"…"`` is a quoted string with squidGuard's escapes; a rewrite rule
``s@REGEX@REPLACEMENT@FLAGS`` is one token whatever it holds (``\\@`` and
``\\}`` escape the delimiters).  ``\\r`` counts as a blank, so CRLF files
read like LF files (squidGuard rejects them).
"""

from __future__ import annotations

from squidguard_bloom.records import FrozenRecord

WORD = "word"
STRING = "string"
LBRACE = "{"
RBRACE = "}"
NL = "newline"
EOF = "end of file"
RULE = "rewrite rule"

_BLANK = " \t\r\f\v"
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}


class Token(FrozenRecord):
    """One token; ``text`` is the word, the unquoted string, or the rule."""

    kind: str
    text: str
    line: int
    col: int

    def shown(self) -> str:
        """How an error message quotes this token."""
        if self.kind in (NL, EOF):
            return f"the {self.kind}"
        return repr(self.text)


def tokenize(text: str) -> tuple[list[Token], list[tuple[int, int, str]]]:
    """The tokens of text, and (line, col, message) for unreadable bits."""
    tokens: list[Token] = []
    problems: list[tuple[int, int, str]] = []
    line, i, start_of_line = 1, 0, 0
    n = len(text)
    while i < n:
        c = text[i]
        col = i - start_of_line + 1
        if c == "\n":
            tokens.append(Token(NL, "\n", line, col))
            line += 1
            i += 1
            start_of_line = i
        elif c in _BLANK:
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{}":
            tokens.append(Token(c, c, line, col))
            i += 1
        elif c == '"':
            i, value, ok = _string(text, i + 1)
            if not ok:
                problems.append((line, col, "a quoted string is not closed on its line"))
            tokens.append(Token(STRING, value, line, col))
        elif text.startswith("s@", i):
            i, value = _rule(text, i)
            tokens.append(Token(RULE, value, line, col))
        else:
            j = i
            while j < n and text[j] not in _BLANK and text[j] not in "\n#{}":
                j += 1
            tokens.append(Token(WORD, text[i:j], line, col))
            i = j
    tokens.append(Token(EOF, "", line, i - start_of_line + 1))
    return tokens, problems


def _string(text: str, i: int) -> tuple[int, str, bool]:
    out: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return i + 1, "".join(out), True
        if c == "\n":
            return i, "".join(out), False
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "\n":
                i += 2
                continue
            if nxt == "x" and i + 3 < n:
                try:
                    out.append(chr(int(text[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                except ValueError:
                    pass
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return i, "".join(out), False


def _rule(text: str, i: int) -> tuple[int, str]:
    """A whole ``s@…@…@flags`` rule: three unescaped @, then flag letters."""
    j, seen, n = i + 2, 1, len(text)
    while j < n and text[j] != "\n" and seen < 3:
        if text[j] == "\\" and j + 1 < n and text[j + 1] != "\n":
            j += 2
            continue
        if text[j] == "@":
            seen += 1
        j += 1
    while j < n and text[j].isalpha():
        j += 1
    return j, text[i:j]

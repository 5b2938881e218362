"""Literal strings an expression cannot match without: the fast path's prefilter.

For an ``expressionlist`` pattern, :func:`required_literals` gives a set of
lower-case ASCII strings such that every URL the pattern matches (RE2,
case-insensitive, on what :func:`~squidguard_bloom.core.ere.ere_to_re2` makes
of it) contains at least one of them.  A URL holding none of them cannot
match, so the C fast path may pass it without asking RE2.

The analysis is deliberately small and conservative: literal runs,
groups, alternation, quantifiers, brackets, ``.``, anchors and the
punctuation and class escapes.  Anything else (``(?``, ``\\p``, ``\\x``,
back-references, non-ASCII, a pattern that can match without any literal
such as ``.*``) gives ``None``: no prefilter, every URL goes to RE2.
"""

from __future__ import annotations

_SPECIAL = frozenset("|()*+?{}[]^$.\\")
_CLASS_ESCAPES = frozenset("dDsSwWbBAz")


class _Unknown(Exception):
    """A construct the analysis does not cover."""


# A "set" is the literals one of which any match must contain; {""} means no
# requirement at all (the empty string occurs everywhere).
_NOTHING: frozenset[str] = frozenset({""})


def _best(sets: list[frozenset[str]]) -> frozenset[str]:
    """The most selective requirement of a concatenation (any one of them holds)."""
    useful = [s for s in sets if "" not in s]
    if not useful:
        return _NOTHING
    return max(useful, key=lambda s: (min(len(x) for x in s), -len(s)))


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def peek(self) -> str:
        return self.p[self.i] if self.i < len(self.p) else ""

    def alternation(self) -> frozenset[str]:
        branches = [self.concat()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.concat())
        out: set[str] = set()
        for b in branches:
            if "" in b:
                return _NOTHING
            out |= b
        return frozenset(out)

    def concat(self) -> frozenset[str]:
        sets: list[frozenset[str]] = []
        run: list[str] = []

        def close_run() -> None:
            if run:
                sets.append(frozenset({"".join(run)}))
                run.clear()

        while self.i < len(self.p) and self.peek() not in "|)":
            atom, literal = self.atom()
            low, _high = self.quantifier()
            if literal is not None and low == 1 and _high == 1:
                run.append(literal)
                continue
            close_run()
            sets.append(atom if low >= 1 else _NOTHING)
        close_run()
        return _best(sets)

    def atom(self) -> tuple[frozenset[str], str | None]:
        """(requirement, the literal character if the atom is one)."""
        c = self.peek()
        if c == "(":
            self.i += 1
            if self.peek() == "?":
                raise _Unknown
            inner = self.alternation()
            if self.peek() != ")":
                raise _Unknown
            self.i += 1
            return inner, None
        if c == "[":
            self.bracket()
            return _NOTHING, None
        if c in ".^$":
            self.i += 1
            return _NOTHING, None
        if c == "\\":
            if self.i + 1 >= len(self.p):
                raise _Unknown
            nxt = self.p[self.i + 1]
            self.i += 2
            if nxt in _CLASS_ESCAPES:
                return _NOTHING, None
            if nxt.isascii() and not nxt.isalnum() and nxt.isprintable():
                return frozenset({nxt.lower()}), nxt.lower()
            raise _Unknown
        if c in "*+?{":  # a repetition with nothing to repeat
            raise _Unknown
        if not (c.isascii() and c.isprintable()):
            raise _Unknown
        self.i += 1
        return frozenset({c.lower()}), c.lower()

    def quantifier(self) -> tuple[int, int]:
        """(minimum, maximum or -1) repetitions of the atom just read."""
        low, high = 1, 1
        while True:
            c = self.peek()
            if c == "*":
                self.i += 1
                low, high = 0, -1
            elif c == "+":
                self.i += 1
                low, high = min(low, 1), -1
            elif c == "?":
                self.i += 1
                low = 0
            elif c == "{":
                lo, hi = self.braces()
                low, high = low * lo, -1 if hi < 0 or high < 0 else high * hi
            else:
                return low, high
            if self.peek() == "?":  # RE2's non-greedy marker
                self.i += 1

    def braces(self) -> tuple[int, int]:
        end = self.p.find("}", self.i)
        if end < 0:
            raise _Unknown
        body = self.p[self.i + 1 : end]
        lo_text, comma, hi_text = body.partition(",")
        if not (lo_text.isascii() and lo_text.isdigit()):
            raise _Unknown
        if comma and hi_text and not (hi_text.isascii() and hi_text.isdigit()):
            raise _Unknown
        self.i = end + 1
        lo = int(lo_text)
        hi = lo if not comma else (int(hi_text) if hi_text else -1)
        return lo, hi

    def bracket(self) -> None:
        """Skip a bracket expression, read as ere_to_re2 reads it."""
        j = self.i + 1
        n = len(self.p)
        if j < n and self.p[j] == "^":
            j += 1
        if j < n and self.p[j] == "]":
            j += 1
        while j < n and self.p[j] != "]":
            if self.p.startswith(("[:", "[=", "[."), j):
                end = self.p.find(self.p[j + 1] + "]", j + 2)
                j = end + 2 if end >= 0 else n
                continue
            j += 1
        if j >= n:
            raise _Unknown
        self.i = j + 1


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """Lower-case strings one of which every match of pattern contains; None if unknown."""
    if not pattern.isascii():
        return None
    parser = _Parser(pattern)
    try:
        found = parser.alternation()
    except _Unknown:
        return None
    if parser.i != len(pattern) or "" in found:
        return None
    return tuple(sorted(found))

"""squidGuard's ``s@REGEX@REPLACEMENT@FLAGS`` rewrite rules, run by RE2.

Semantics, as squidGuard 1.6 applies them to the original URL:

* the regex is POSIX extended, case-sensitive unless the ``i`` flag is set;
* in the replacement ``\\0`` to ``\\9`` insert groups, ``&`` the whole match,
  and ``\\x`` any other character x literally;
* ``g`` replaces every match (later ones may not match at ``^``), otherwise
  only the first; the text after the last match is kept;
* ``r`` prefixes the result with ``302:`` and ``R`` with ``301:``, which
  turns the answer into a redirect;
* the first rule of a block whose regex matches decides.

RE2 runs in time linear in the URL, so no request can make a rule slow.
Bytes that are not UTF-8 (in a rule or in the URL) follow the rule of
:mod:`squidguard_bloom.core.rawtext`: the regex sees each as one character, and
the rewritten URL keeps them as they came.
"""

from __future__ import annotations

from squidguard_bloom.core.config.model import RewriteRule
from squidguard_bloom.core.ere import ere_to_re2
from squidguard_bloom.core.rawtext import for_regex
from squidguard_bloom.errors import SquidguardBloomError
from squidguard_bloom.records import FrozenRecord

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:  # RE2 (and libstdc++) load only for a config with rewrites or expressions
    import re2


class RewriteError(SquidguardBloomError):
    """A rewrite rule whose regex RE2 cannot compile."""


class _Compiled(FrozenRecord):
    regex: re2._Regexp
    parts: tuple[str | int, ...]  # literal text, or a group number
    global_: bool
    prefix: str  # "", "302:" or "301:"


def _replacement(text: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    lit: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt.isdigit():
                parts.extend(["".join(lit), int(nxt)])
                lit = []
            else:
                lit.append(nxt)
            i += 2
            continue
        if c == "&":
            parts.extend(["".join(lit), 0])
            lit = []
        else:
            lit.append(c)
        i += 1
    parts.append("".join(lit))
    return tuple(p for p in parts if p != "")


class RewriteBlock:
    """The compiled rules of one ``rewrite`` block."""

    def __init__(self, name: str, rules: list[RewriteRule]) -> None:
        import re2  # noqa: PLC0415 - see TYPE_CHECKING above

        self.name = name
        self._rules: list[_Compiled] = []
        for rule in rules:
            opts = re2.Options()
            opts.case_sensitive = "i" not in rule.flags
            try:
                regex = re2.compile(for_regex(ere_to_re2(rule.pattern)), opts)
            except re2.error as exc:
                msg = (f"{rule.pos}: rewrite rule s@{rule.pattern}@…: invalid regular expression"
                       f" ({exc}); fix or remove the rule")
                raise RewriteError(msg) from exc
            prefix = "301:" if "R" in rule.flags else "302:" if "r" in rule.flags else ""
            # \N beyond the regex's groups inserts nothing (it must not fail the request)
            parts = tuple(p for p in _replacement(rule.replacement)
                          if isinstance(p, str) or p <= regex.groups)
            self._rules.append(_Compiled(regex, parts, "g" in rule.flags, prefix))

    def apply(self, url: str) -> str | None:
        """The rewritten text (with its 30x: prefix), or None if no rule matches."""
        subject = for_regex(url)  # the same length: its match positions are url's
        for rule in self._rules:
            m = rule.regex.search(subject)
            if m is None:
                continue
            out: list[str] = []
            pos = 0
            while m is not None:
                out.append(url[pos : m.start()])
                for part in rule.parts:
                    if isinstance(part, str):
                        out.append(part)
                    else:
                        start, end = m.span(part)
                        out.append(url[start:end] if start >= 0 else "")
                pos = m.end()
                if not rule.global_ or pos >= len(url):
                    break
                if m.end() == m.start():  # an empty match: step over one character
                    out.append(url[pos])
                    pos += 1
                m = rule.regex.search(subject, pos)  # "^" cannot match again (REG_NOTBOL)
            out.append(url[pos:])
            return rule.prefix + "".join(out)
        return None


"""``time`` blocks: reading ``weekly``/``date`` lines (evaluating them is
:meth:`squidguard_bloom.core.config.model.TimeSpec.active`).

An element is active when its day matches and ``start <= minute < end``
(minute of the local day; ``24:00`` is 1440; hours are not range-checked,
as squidGuard).  The forms squidGuard accepts, and no others:

- ``weekly DAYS HH:MM-HH:MM [HH:MM-HH:MM …]`` where DAYS is ``*``, one word
  of the letters ``smtwhfa`` in any case (s=Sunday … a=Saturday), or
  lower-case day names (``sat``, ``saturday``, ``saturdays``) separated by
  blanks or commas.  Times are required, two digits each; blanks may
  surround the ``-``.
- ``date YYYY-MM-DD [times]`` with ``*`` allowed in any part, ``.`` allowed
  as separator, or ``date YYYY-MM-DD-YYYY-MM-DD [times]`` (no ``*``).
  Without times a date covers 00:00-23:59, 23:59 itself excluded, as
  squidGuard does.
"""

from __future__ import annotations

import re

from squidguard_bloom.core.config.model import TimeElement
from squidguard_bloom.records import FrozenRecord

_LETTERS = {"m": 0, "t": 1, "w": 2, "h": 3, "f": 4, "a": 5, "s": 6}
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = {form: n for n, full in enumerate(_FULL) for form in (full[:3], full, full + "s")}
_CLOCK = r"(\d\d):(\d\d)"
_TIMES = re.compile(rf"\s*{_CLOCK}\s*-\s*{_CLOCK}(?=\s|$)")
_DAY = r"(\d{4}|\*)[-.](\d\d|\*)[-.](\d\d|\*)"
_DATE = re.compile(rf"{_DAY}(?:\s*-\s*(\d{{4}})[-.](\d\d)[-.](\d\d))?(?=\s|$)")
DATE_DAY = (0, 23 * 60 + 59)
TIMES_HINT = "a time range HH:MM-HH:MM (two digits each)"

Day = tuple[int | None, int | None, int | None]


class TimeSyntaxError(ValueError):
    """A bad ``weekly``/``date`` line; ``arg`` is the index of the bad word (None: line end).

    ``found`` is true for "found X, expected Y" errors (squidGuard's syntax
    errors); false for its "format error" kind, whose message stands alone.
    """

    def __init__(self, arg: int | None, message: str, *, found: bool) -> None:
        super().__init__(message)
        self.arg = arg
        self.found = found


class _Joined(FrozenRecord):
    """Words joined by one blank, with the offset where each starts."""

    text: str
    starts: tuple[int, ...]

    @classmethod
    def of(cls, words: list[str]) -> _Joined:
        starts, offset = [], 0
        for w in words:
            starts.append(offset)
            offset += len(w) + 1
        return cls(" ".join(words), tuple(starts))

    def arg_at(self, offset: int) -> int | None:
        """Index of the word holding offset (None: past the end of the line)."""
        if offset >= len(self.text):
            return None
        return max(n for n, start in enumerate(self.starts) if start <= offset)


def _times(j: _Joined, offset: int) -> list[tuple[int, int]]:
    """One or more time ranges from offset to the end of the line."""
    ranges: list[tuple[int, int]] = []
    while offset < len(j.text):
        m = _TIMES.match(j.text, offset)
        if m is None:
            raise TimeSyntaxError(j.arg_at(offset), TIMES_HINT, found=True)
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        ranges.append((h1 * 60 + m1, h2 * 60 + m2))
        offset = m.end()
        while offset < len(j.text) and j.text[offset] == " ":
            offset += 1
    return ranges


def _letters(word: str) -> frozenset[int]:
    bad = [c for c in word.lower() if c not in _LETTERS]
    if bad:
        raise ValueError(
            f"weekday format error in {word!r}: {bad[0]!r} is not a day letter; use letters "
            "of smtwhfa (s=Sun m=Mon t=Tue w=Wed h=Thu f=Fri a=Sat), lower-case day names "
            "(mon, monday, mondays …) or *")
    return frozenset(_LETTERS[c] for c in word.lower())


def parse_weekly(words: list[str]) -> list[TimeElement]:
    """The elements of ``weekly WORDS…`` (one per time range)."""
    if not words:
        raise TimeSyntaxError(None, "weekdays (e.g. mtwhf, saturday or *)", found=True)
    days: set[int] = set()
    n = 0
    if words[0] == "*":
        days.update(range(7))
        n = 1
    else:
        while n < len(words):
            pieces = [p for p in words[n].split(",") if p]
            if not pieces and n > 0:  # a lone "," between names
                n += 1
                continue
            if not pieces or not all(p in _DAY_NAMES for p in pieces):
                break
            days.update(_DAY_NAMES[p] for p in pieces)
            n += 1
        if n == 0:
            if not re.fullmatch(r"[^\d:*]+", words[0]):
                raise TimeSyntaxError(0, "weekdays (e.g. mtwhf, saturday or *)", found=True)
            try:
                days.update(_letters(words[0]))
            except ValueError as exc:
                raise TimeSyntaxError(0, str(exc), found=False) from None
            n = 1
    j = _Joined.of(words)
    offset = j.starts[n] if n < len(words) else len(j.text)
    if offset >= len(j.text):
        raise TimeSyntaxError(None, TIMES_HINT, found=True)
    day_set = frozenset(days)
    return [TimeElement(day_set, None, None, a, b) for a, b in _times(j, offset)]


def _check_day(word: str, month: int | None, day: int | None) -> None:
    if (month is not None and not 1 <= month <= 12) or (day is not None and not 1 <= day <= 31):
        raise ValueError(f"date format error in {word!r}: month must be 01-12, day 01-31")


def parse_date(words: list[str]) -> list[TimeElement]:
    """The elements of ``date WORDS…`` (one per time range, or one whole day)."""
    if not words:
        raise TimeSyntaxError(None, "a date YYYY-MM-DD", found=True)
    j = _Joined.of(words)
    m = _DATE.match(j.text)
    if m is None:
        raise TimeSyntaxError(0, "a date YYYY-MM-DD (* allowed in any part) or a range "
                                 "YYYY-MM-DD-YYYY-MM-DD", found=True)
    first: Day = tuple(None if g == "*" else int(g) for g in m.groups()[:3])  # type: ignore[assignment]
    last: tuple[int, int, int] | None = None
    if m.group(4) is not None:
        if None in first:
            raise TimeSyntaxError(0, "a date range without * (YYYY-MM-DD-YYYY-MM-DD)",
                                  found=True)
        last = (int(m.group(4)), int(m.group(5)), int(m.group(6)))
    try:
        _check_day(m.group(0).strip(), first[1], first[2])
        if last is not None:
            _check_day(m.group(0).strip(), last[1], last[2])
    except ValueError as exc:
        raise TimeSyntaxError(0, str(exc), found=False) from None
    offset = m.end()
    while offset < len(j.text) and j.text[offset] == " ":
        offset += 1
    ranges = _times(j, offset) if offset < len(j.text) else [DATE_DAY]
    return [TimeElement(None, first, last, a, b) for a, b in ranges]

"""``time`` blocks: parsing their day and time specs, and evaluating them.

An element is active when its day matches and ``start <= minute < end``
(minute of the local day; ``24:00`` is 1440).  ``weekly`` days are letters
``smtwhfa`` (s=Sunday … a=Saturday), day names (only the first three
letters count) or ``*``; ``date`` is ``YYYY-MM-DD`` with ``*`` allowed in
any part, ``.`` allowed as separator, or a range ``DATE-DATE``.  A date
without times covers 00:00-23:59 with 23:59 itself excluded, as squidGuard.
"""

from __future__ import annotations

import re
import time

from squidguard_bloom.config.model import TimeElement

_LETTERS = {"m": 0, "t": 1, "w": 2, "h": 3, "f": 4, "a": 5, "s": 6}
_NAMES = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_TIMES = re.compile(r"(\d{1,2}):(\d{1,2})-(\d{1,2}):(\d{1,2})")
_DATE_PART = r"(\d{4}|\*)[-.](\d{1,2}|\*)[-.](\d{1,2}|\*)"
_DATE = re.compile(_DATE_PART)
_RANGE = re.compile(r"(\d{4})[-.](\d{1,2})[-.](\d{1,2})-(\d{4})[-.](\d{1,2})[-.](\d{1,2})")
ALL_DAY = (0, 1440)
DATE_DAY = (0, 23 * 60 + 59)


def is_time_range(word: str) -> bool:
    """Whether word is ``HH:MM-HH:MM``."""
    return _TIMES.fullmatch(word) is not None


def parse_times(word: str) -> tuple[int, int]:
    """``HH:MM-HH:MM`` -> (start, end) minutes; not range-checked, as squidGuard."""
    m = _TIMES.fullmatch(word)
    if m is None:
        raise ValueError(f"expected a time range HH:MM-HH:MM, found {word!r}")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    return h1 * 60 + m1, h2 * 60 + m2


def parse_weekdays(words: list[str]) -> frozenset[int]:
    """Day words of a ``weekly`` line -> weekday numbers (0 = Monday)."""
    days: set[int] = set()
    for word in words:
        for part in filter(None, word.split(",")):
            low = part.lower()
            if low == "*":
                days.update(range(7))
            elif low[:3] in _NAMES and len(low) >= 3 and low.rstrip("s").startswith(low[:3]):
                days.add(_NAMES[low[:3]])
            elif all(ch in _LETTERS for ch in low):
                days.update(_LETTERS[ch] for ch in low)
            else:
                raise ValueError(
                    f"weekday format error in {part!r}: use letters of smtwhfa "
                    "(s=Sun m=Mon t=Tue w=Wed h=Thu f=Fri a=Sat), day names or *")
    return frozenset(days)


def _num(text: str) -> int | None:
    return None if text == "*" else int(text)


def parse_date(word: str) -> tuple[tuple[int | None, int | None, int | None],
                                   tuple[int, int, int] | None]:
    """``YYYY-MM-DD`` (``*`` parts allowed) or a range -> (from, to or None)."""
    m = _RANGE.fullmatch(word)
    if m is not None:
        y1, m1, d1, y2, m2, d2 = (int(x) for x in m.groups())
        for month, day in ((m1, d1), (m2, d2)):
            _check(month, day, word)
        return (y1, m1, d1), (y2, m2, d2)
    m = _DATE.fullmatch(word)
    if m is None:
        raise ValueError(f"date format error in {word!r}: expected YYYY-MM-DD "
                         "(* allowed in any part) or YYYY-MM-DD-YYYY-MM-DD")
    y, mo, d = (_num(x) for x in m.groups())
    _check(mo, d, word)
    return (y, mo, d), None


def _check(month: int | None, day: int | None, word: str) -> None:
    if (month is not None and not 1 <= month <= 12) or (day is not None and not 1 <= day <= 31):
        raise ValueError(f"date format error in {word!r}: month 1-12, day 1-31")


def _date_matches(e: TimeElement, when: time.struct_time) -> bool:
    today = (when.tm_year, when.tm_mon, when.tm_mday)
    assert e.date_from is not None
    if e.date_to is not None:
        return e.date_from <= today <= e.date_to  # type: ignore[operator]
    return all(want is None or want == got for want, got in zip(e.date_from, today, strict=True))


def is_active(elements: list[TimeElement], when: time.struct_time) -> bool:
    """Whether any element covers the local time ``when``."""
    minute = when.tm_hour * 60 + when.tm_min
    for e in elements:
        if not e.start <= minute < e.end:
            continue
        if e.weekdays is not None:
            if when.tm_wday in e.weekdays:
                return True
        elif e.date_from is not None and _date_matches(e, when):
            return True
    return False

"""Which words squidGuard accepts as names, paths and redirect URLs.

Its lexer decides this, so a wrong word is a syntax error there.  Unquoted
names and paths start with a letter or ``/`` and go on with letters, digits
and ``/ _ - . : % + @ , ? = & *``; keywords, day names and plain numbers
are never names.  Redirect URLs start with a letter, ``3`` (``302:``) or
``/`` and hold no ``@ ; " [ { `` or blank.
"""

from __future__ import annotations

import re

_ACCENTS = "àéèñáìíòóùú"
NAME = re.compile(rf"[A-Za-z/{_ACCENTS}][A-Za-z0-9/_\-.:%+@,?=&*{_ACCENTS}]*")
REDIRECT = re.compile(r"[A-Za-z3/][A-Za-z0-9/_\-.,():%+?=&~!]*")
RESERVED = frozenset({
    "dest", "destination", "src", "source", "rew", "rewrite", "time", "syslog", "acl", "dbhome",
    "logdir", "domainlist", "urllist", "expressionlist", "iplist", "user", "userlist",
    "userquery", "ldapusersearch", "ldapipsearch", "execuserlist", "userquota", "domain", "pass",
    "redirect", "minutely", "hourly", "daily", "weekly", "continuous", "continue", "sporadic",
    "date", "anonymous", "verbose", "log", "logfile", "within", "outside", "else", "ip",
    "ldapbinddn", "ldapbindpass", "ldapcachetime", "ldapprotover", "mysqlusername",
    "mysqlpassword", "mysqldb", "mon", "monday", "mondays", "tue", "tuesday", "tuesdays", "wed",
    "wednesday", "wednesdays", "thu", "thursday", "thursdays", "fri", "friday", "fridays", "sat",
    "saturday", "saturdays", "sun", "sunday", "sundays"
})


def name_problem(word: str) -> str | None:
    """Why an unquoted word cannot be a name or path, or None when it can."""
    if word in RESERVED:
        return f"a name ({word!r} is a squidGuard keyword; choose another name, or quote a path)"
    if NAME.fullmatch(word) is None:
        return ("a name (it must start with a letter or / and hold only letters, digits and "
                "/_-.:%+@,?=&*; quote a path that starts otherwise)")
    return None


def redirect_problem(word: str) -> str | None:
    """Why a word cannot be a redirect URL, or None when it can."""
    if REDIRECT.fullmatch(word) is None:
        return ("a redirect URL (it must start with a letter, / or a 301:/302:/303: prefix "
                "and hold no quotes, @, ;, [ or blanks)")
    return None

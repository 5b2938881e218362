"""Blacklists: squidGuard's ``domainlist``, ``urllist`` and ``expressionlist`` files.

:func:`open_list` gives a list ready for lookups: from its compiled,
memory-mapped form (``LIST.sgb``, written by ``squidguard-bloom -C``) when
that is present and matches the text file, else from the text.
"""

from __future__ import annotations

from squidguard_bloom.core.lists.errors import ListError
from squidguard_bloom.core.lists.lookup import DomainList, ExpressionList, Match, UrlList
from squidguard_bloom.core.lists.store import compile_list, open_list

__all__ = [
    "DomainList",
    "ExpressionList",
    "ListError",
    "Match",
    "UrlList",
    "compile_list",
    "open_list",
]

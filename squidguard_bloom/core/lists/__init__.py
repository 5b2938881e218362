"""Blacklists: squidGuard's ``domainlist``, ``urllist`` and ``expressionlist`` files.

:func:`.store.open_list` gives a list ready for lookups: from its compiled,
memory-mapped form (``LIST.sgb``, written by ``squidguard-bloom -C``) when
that is present and matches the text file, else from the text.  A face that
imports nothing, so that the writer can use the compiled format without
loading the store.
"""

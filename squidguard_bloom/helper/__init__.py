"""What Squid runs: the ``squidguard-bloom`` url_rewrite helper.

:mod:`.cli` (squidGuard's flags) -> :mod:`.program` (start, reload on SIGHUP,
emergency mode, ``--check``, ``-C``) -> :mod:`.runtime` (what a running helper
needs, built) and :mod:`.loop` (THE HOT PATH: read, decide, welcome, reply,
flush), with :mod:`.protocol` (Squid's lines), :mod:`.reqlog` (log files),
:mod:`.errorreport` (internal errors, never a flood), :mod:`.health` (the
status line in squidGuard.log), :mod:`.welcome` (the first-visit rule) and
:mod:`.fastplan` (the program the C fast path runs).
"""

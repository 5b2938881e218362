"""What Squid runs: the ``squidguard-bloom`` url_rewrite helper.

:mod:`.cli` (squidGuard's flags) -> :mod:`.runtime` (start, reload, emergency
mode) -> :mod:`.loop` (THE HOT PATH: read, decide, welcome, reply, flush),
with :mod:`.protocol` (Squid's lines), :mod:`.reqlog` (log files),
:mod:`.welcome` (the first-visit rule) and :mod:`.fastplan` (the program the
C fast path runs).
"""

"""Benchmarks behind the ``squidguard-bloom-bench`` command.

Nothing here is imported by the helper itself: the subcommands measure
the Bloom filter (``fpr``), the whole helper next to squidGuard
(``helper``) and the per-request cost of the first-visit check
(``welcome``), and print plain tables (or JSON).
"""

"""Our helper next to squidGuard 1.6 at the sizes squidGuard was measured with.

Usage: python bench/engine_vs_squidguard.py [any option of `squidguard-bloom-bench helper`]

Runs `squidguard-bloom-bench helper` with the data of squidguard.md §16:
996,920 domains, 50,000 urls, 2 expressions, 1,000,000 Squid 3.4 request
lines (myip=/myport= extras) from 3,000 clients in 10.0.0.0/8, seed 1234;
options given here are appended, so they win (e.g. --lines 100000 for a
quick look, --workdir DIR to keep and reuse the generated data, --json).
Prints the side-by-side table: startup, lines/s, peak RSS/PSS, with and
without a welcome block, with 4 processes sharing one filter, and the
blocked-hit counts of both programs.
"""

from __future__ import annotations

import sys

from squidguard_bloom.bench.cli import main

SECTION_16 = [
    *("helper", "--domains", "996920", "--urls", "50000", "--lines", "1000000"),
    *("--clients", "3000", "--seed", "1234", "--procs", "4"),
]

if __name__ == "__main__":
    sys.exit(main(SECTION_16 + sys.argv[1:]))

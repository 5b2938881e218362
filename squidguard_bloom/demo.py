"""A short demonstration of the shared first-visit filter (``./setup.sh run``).

Three "helper children" open one memory-mapped filter file; a client seen by
any of them is known to all, and the file keeps it across restarts.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from squidguard_bloom.bloom import BloomFilter
from squidguard_bloom.keys import address_key


def main() -> None:
    """Run the demonstration, printing what each step shows."""
    out = sys.stdout
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "seen.bloom"
        children = [BloomFilter(100_000, 0.001, state) for _ in range(3)]
        visits = [("10.0.0.1", 0), ("010.0.0.1", 1), ("::ffff:10.0.0.1", 2), ("10.0.0.2", 2)]
        for client, child in visits:
            new = children[child].add(address_key(client))
            verdict = "first visit -> welcome page" if new else "seen before -> pass"
            print(f"child {child}: client {client:18} {verdict}", file=out)
        for child in children:
            child.close()
        with BloomFilter(100_000, 0.001, state) as restarted:
            again = address_key("10.0.0.1") in restarted
            print(f"after a restart 10.0.0.1 is {'still known' if again else 'FORGOTTEN'}",
                  file=out)
            print(restarted.info().describe(), file=out)


if __name__ == "__main__":
    main()

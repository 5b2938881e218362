"""``python -m squidguard_bloom.monitor`` runs the monitor, as the console script does."""

from squidguard_bloom.monitor.cli import main

raise SystemExit(main())

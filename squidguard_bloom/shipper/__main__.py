"""``python -m squidguard_bloom.shipper`` runs the shipper, as the console script does."""

from squidguard_bloom.shipper.cli import main

raise SystemExit(main())

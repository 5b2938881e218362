"""The monitor: the shipped logs of every proxy in a database, exactly once.

Runs on the monitoring host (``squidguard-bloom-monitor``, extra ``[monitor]``).
Neither the Squid helper nor the shipper imports anything from here. See
``docs/monitor.md`` for the schema and the module layout.
"""

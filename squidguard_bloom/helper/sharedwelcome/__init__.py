"""The welcome state shared by several proxies on Redis (``welcome { shared … }``).

Redis holds the authoritative bits, laid out as the local filter's (see
:meth:`squidguard_bloom.bloom.BloomFilter.positions`); the local memory-mapped
filter becomes a cache in front of it, so a client it already knows costs no
network call.  The possibly-new clients of one batch share one pipeline.

* :mod:`.settings` -- what the config asked for (no Redis import);
* :mod:`.layout` -- key names, shards and the commands, as bytes;
* :mod:`.link` -- the connections (redis-py), the deadline, reconnecting;
* :mod:`.welcome` -- :class:`~.welcome.SharedWelcome`, what the helper calls.

Only :mod:`.link` imports redis-py, and nothing imports this package unless a
configuration has a ``shared`` line.
"""

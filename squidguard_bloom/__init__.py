"""squidguard-bloom: a squidGuard-compatible Squid url_rewrite helper.

It adds a shared, persistent Bloom filter that remembers which clients were
already seen, so that each client's first allowed request can be sent to a
welcome page.
"""

__version__ = "0.1.0"

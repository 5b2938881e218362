"""The core the three programs share: configuration, lists, hosts, the decision engine, records.

Imports nothing of ``helper``, ``shipper`` or ``monitor``; reaches C only through
:mod:`squidguard_bloom.native`.
"""

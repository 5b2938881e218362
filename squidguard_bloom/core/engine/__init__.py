"""The decision: squidGuard's per-request procedure over a loaded configuration.

:mod:`.engine` (the procedure), :mod:`.decision` (its answer and the Policy
interface), :mod:`.template` (redirect templates), :mod:`.rewrite` (rewrite
rules).
"""

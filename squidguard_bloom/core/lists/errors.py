"""Errors about list files."""

from squidguard_bloom.errors import SquidguardBloomError


class ListError(SquidguardBloomError):
    """A list file that cannot be used; the message names file:line and what to do."""

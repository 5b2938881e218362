"""The package's exception tree: one base, one branch per subsystem."""


class SquidguardBloomError(Exception):
    """Base of every error squidguard-bloom raises on purpose."""


class BloomError(SquidguardBloomError, ValueError):
    """Bad Bloom filter parameters, or a filter file that cannot be used."""


class BloomFileError(BloomError):
    """A filter file exists but is foreign, corrupted, truncated or mismatched."""

    def __init__(self, path: str, reason: str, hint: str = "") -> None:
        self.path = path
        self.reason = reason
        text = f"{path}: {reason}"
        super().__init__(f"{text}; {hint}" if hint else text)

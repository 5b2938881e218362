"""What a ``welcome { shared … }`` configuration asks of the shared backend."""

from __future__ import annotations

from squidguard_bloom.records import FrozenRecord, field


class SharedSettings(FrozenRecord):
    """The shared backend's settings, resolved (the password read from its file).

    where: for each setting that an error may be about ("shared",
    "shared-password-file", "capacity"), "FILE:LINE: welcome SETTING VALUE",
    so that every message names what to change.
    """

    urls: tuple[str, ...]
    cluster: bool = False
    user: str | None = None
    password: str | None = None
    deadline: float = 0.05  # seconds one batch may wait for Redis
    fallback: str = "seen"  # "seen" or "local"
    shards: int = 1
    prefix: str = "sgb:welcome"
    where: dict[str, str] = field(default_factory=dict)
    connect_timeout: float = 1.0  # seconds for one connection attempt (never in a batch)

    def about(self, setting: str) -> str:
        """How a message names setting: its file:line and text, or just its name."""
        return self.where.get(setting, f"welcome {setting}")

    @property
    def target(self) -> str:
        """The server(s), as written in the config."""
        return ("cluster " if self.cluster else "") + " ".join(self.urls)

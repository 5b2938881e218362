"""The first-visit rule over the shared filter file."""

from __future__ import annotations

import os
from pathlib import Path

from squidguard_bloom.helper.welcome import Welcome, WelcomeSettings


def settings(tmp_path: Path, **kw: object) -> WelcomeSettings:
    return WelcomeSettings(redirect="http://w/", state=str(tmp_path / "s" / "seen.bloom"),
                           capacity=10_000, error=0.001, **kw)  # type: ignore[arg-type]


def test_children_share_one_filter(tmp_path: Path) -> None:
    """Three helper children on one state file welcome a client once between them."""
    children = [Welcome(settings(tmp_path)) for _ in range(3)]
    answers = [c.first_visit("10.0.0.1", "", 0) for c in children]
    answers += [c.first_visit("::ffff:10.0.0.1", "", 0) for c in children]
    assert answers == [True] + [False] * 5
    for c in children:
        c.close()


def test_restart_does_not_welcome_again(tmp_path: Path) -> None:
    """A new process (Squid's reconfigure/rotate restarts) still knows the client."""
    first = Welcome(settings(tmp_path))
    assert first.first_visit("2001:db8::1", "", 0)
    first.close()
    again = Welcome(settings(tmp_path))
    assert not again.first_visit("2001:DB8::1", "", 0)
    assert again.first_visit("2001:db8::2", "", 0)
    again.close()


def test_user_keys_when_configured(tmp_path: Path) -> None:
    """With key=user a known user is welcomed once across addresses; others by IP."""
    w = Welcome(settings(tmp_path, key="user"))
    assert w.first_visit("10.0.0.1", "Alice", 0)
    assert not w.first_visit("10.0.0.2", "alice", 0)
    assert w.first_visit("10.0.0.2", "", 0)
    w.close()


def test_clients_without_identity_are_not_welcomed(tmp_path: Path) -> None:
    """An unparsable client address is never redirected (nothing to remember it by)."""
    w = Welcome(settings(tmp_path))
    assert not w.first_visit("-", "", 0)
    assert not w.first_visit("garbage", "", 0)
    w.close()


def test_window_welcomes_again_after_one_to_two_windows(tmp_path: Path) -> None:
    """With window W a client is known for the rest of its window and the next one,
    then welcomed again; generation files older than that are deleted."""
    w = Welcome(settings(tmp_path, window=100.0))
    assert w.first_visit("10.0.0.1", "", 150)  # generation 1
    assert not w.first_visit("10.0.0.1", "", 199)
    assert not w.first_visit("10.0.0.1", "", 250)  # generation 2: previous knows it
    assert w.first_visit("10.0.0.1", "", 350)  # generation 3: forgotten, welcome again
    assert not w.first_visit("10.0.0.1", "", 360)
    names = sorted(os.listdir(tmp_path / "s"))
    assert names == ["seen.bloom.2", "seen.bloom.3"]
    w.close()


def test_describe_spells_the_window_as_the_config_does(tmp_path: Path) -> None:
    """The start-up line names the window in days/hours/minutes, not 2.592e+06s."""
    for window, shown in ((30 * 86400, "30d to 60d"), (12 * 3600, "12h to 1d"),
                          (90 * 60, "90m to 3h"), (45, "45s to 90s")):
        w = Welcome(WelcomeSettings(redirect="http://w/", state=str(tmp_path / "w.bloom"),
                                    capacity=100, window=window))
        assert f"welcomed again after {shown})" in w.describe()
        w.close()

"""The monitor reads the helper's and the shipper's status lines field by field."""

from __future__ import annotations

from squidguard_bloom.monitor.parse import (
    helper_event_kind,
    parse_helper_status,
    parse_shipper_status,
    shipper_event_kind,
)


def test_helper_status_fields() -> None:
    msg = ("status: answered=1200 blocks=31 welcomes=4 filter=2210/1000000 fpr=2.1e-09 "
           "target=0.001 over_capacity=no emergency=no uptime=3600 interval=60")
    assert helper_event_kind(msg) == "status"
    assert parse_helper_status(msg) == {
        "answered": "1200", "blocks": "31", "welcomes": "4", "filter": "2210/1000000",
        "fpr": "2.1e-09", "target": "0.001", "over_capacity": "no", "emergency": "no",
        "uptime": "3600", "interval": "60"}


def test_helper_status_in_emergency_and_later_keys() -> None:
    msg = ("status: answered=0 blocks=0 welcomes=0 filter=- fpr=- target=- over_capacity=no "
           "emergency=pass uptime=0 interval=60 newkey=7")
    fields = parse_helper_status(msg)
    assert fields is not None
    assert (fields["emergency"], fields["filter"], fields["newkey"]) == ("pass", "-", "7")


def test_not_a_helper_status() -> None:
    assert parse_helper_status("squidguard-bloom ready for requests (1.0)") is None
    assert parse_helper_status("status: something else") is None
    # a reload line is a reload, an emergency line an emergency, even with "status" words
    assert helper_event_kind("Received sigHUP, reloaded configuration") == "reload"
    assert helper_event_kind("emergency mode: pass: 2 problem(s) in x.conf") == "emergency"


def test_shipper_status() -> None:
    msg = ("status: link up; squidGuard: 36000 lines / 5400000 bytes shipped, 0 bytes behind, "
           "lag 0.0 s; access: 10 lines / 1500 bytes shipped, 300 bytes behind, lag 12.5 s")
    assert shipper_event_kind(msg) == "status"
    assert parse_shipper_status(msg) == ("up", {"squidGuard": (36000, 5400000, 0, 0.0),
                                                "access": (10, 1500, 300, 12.5)})
    assert parse_shipper_status("status: link down") == ("down", {})
    assert parse_shipper_status(
        "status: link down [fault=refused]; squidGuard: 1 lines / 9 bytes shipped, 9 bytes "
        "behind, lag 4.0 s") == ("down [fault=refused]", {"squidGuard": (1, 9, 9, 4.0)})
    assert parse_shipper_status("status: link up; garbage") is None
    assert parse_shipper_status("link to x restored after 3 s") is None

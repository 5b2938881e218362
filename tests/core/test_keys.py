"""Canonical client keys: one client, one key, whatever the spelling."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squidguard_bloom.core.keys import address_key, user_key


@pytest.mark.parametrize(
    ("spellings", "packed"),
    [
        (["10.0.0.1", "010.0.0.1", "10.000.0.001", " 10.0.0.1 ", "::ffff:10.0.0.1",
          "::FFFF:10.0.0.1", "::ffff:a00:1", "[::ffff:10.0.0.1]"], bytes([10, 0, 0, 1])),
        (["2001:db8::5", "2001:DB8::5", "2001:0db8:0:0:0:0:0:5", "[2001:db8::5]",
          "2001:db8::5%eth0"], ipaddress.IPv6Address("2001:db8::5").packed),
        (["::1", "0:0:0:0:0:0:0:1"], ipaddress.IPv6Address("::1").packed),
    ],
)
def test_spellings_of_one_address_give_one_key(spellings: list[str], packed: bytes) -> None:
    """Zero padding, case, brackets, zones and IPv4 mapping never split a client."""
    assert {address_key(s) for s in spellings} == {packed}


@pytest.mark.parametrize("bad", ["", "-", "garbage", "10.1", "1.2.3.256", "1.2.3.4.5", "::g",
                                 "\uff11.\uff12.\uff13.\uff14", "1.2.3.-4",
                                 "1.2.3.\udcff", "::\udcff", "[\udcff]"])
def test_non_addresses_are_refused(bad: str) -> None:
    """Anything that is not an address raises ValueError naming it."""
    with pytest.raises(ValueError, match="not an IP address"):
        address_key(bad)


@given(st.ip_addresses())
def test_key_is_the_packed_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """For any address, the key is its packed form (IPv4 for mapped IPv6)."""
    mapped = getattr(addr, "ipv4_mapped", None)
    expected = mapped.packed if mapped else addr.packed
    assert address_key(str(addr)) == expected
    assert address_key(addr.exploded.upper()) == expected


@given(st.text(max_size=30), st.ip_addresses().filter(lambda a: not a.is_multicast))
def test_user_keys_never_collide_with_address_keys(name: str, addr: object) -> None:
    """User keys are never 4 bytes and start with 0xff: no client address has such a key."""
    assert user_key(name) != address_key(str(addr))
    assert user_key(name.upper()) == user_key(name.lower()) or name.upper().lower() != name.lower()

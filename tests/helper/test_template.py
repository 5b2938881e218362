"""Redirect templates: squidGuard's % codes, made safe for replies and pages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squidguard_bloom.core.engine.template import TemplateValues, expand

V = TemplateValues(client="10.0.0.1", fqdn="pc.lan", user="Bob", source="kids", target="porn",
                   url="http://Bad.example/dir/page.html?q=1")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("http://b/?a=%a&n=%n&i=%i&s=%s&t=%t", (None, "http://b/?a=10.0.0.1&n=pc.lan&i=bob&s=kids&t=porn")),
        ("302:http://b/?u=%u", (302, "http://b/?u=http://Bad.example/dir/page.html?q=1")),
        ("301:http://b/%p", (301, "http://b/dir/page.html?q=1")),
        ("http://b/%f", (None, "http://b/page.html?q=1")),
        ("http://b/%q", (None, "http://b/noquotapc.lan")),
        ("http://b/%%%x%", (None, "http://b/%%%x%")),
        ("200:http://b/", (302, "http://b/")),
    ],
)
def test_codes_expand_like_squidguard(template: str, expected: tuple) -> None:
    """Each code as squidGuard 1.6 fills it; unknown codes and %% stay literal."""
    assert expand(template, V) == expected


def test_url_is_cut_at_2048_bytes() -> None:
    """%u is truncated at 2048 bytes, as in squidGuard."""
    long = TemplateValues(url="http://x/" + "a" * 5000)
    assert len(expand("%u", long)[1]) == 2048


@given(st.text(), st.text(), st.text())
def test_values_cannot_inject(url: str, user: str, fqdn: str) -> None:
    """No request can put a space, quote, backslash or line break into the result."""
    _, out = expand("302:http://b/?u=%u&i=%i&n=%n&p=%p&f=%f", TemplateValues(
        url=url, user=user, fqdn=fqdn))
    assert not any(c in out for c in " \"'\\\r\n\t<>")
    assert out.isascii()

"""Every construct of the language lands in the model with the values written."""

from __future__ import annotations

import ipaddress
import os

import pytest

from squidguard_bloom.core.config.loader import load_config
from squidguard_bloom.core.config.model import (
    OUTSIDE,
    WITHIN,
    IPEntry,
    LogSpec,
    PassItem,
    Restriction,
    TimeElement,
)

from .conftest import DEFAULT_ACL


def v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def test_dbhome_logdir_from_the_file_and_relative_paths(tree):
    tree.file("ads/domains")
    tree.file("dest/ads/urllist")
    tree.file("dest/ads/expressionlist")
    c = tree.load(f"dbhome {tree.db}\nlogdir {tree.logs}\n"
                  "dest ads {\n domainlist ads/domains\n urllist -\n expressionlist -\n"
                  " log anonymous ads.log\n}\n" + DEFAULT_ACL)
    assert (c.dbhome, c.logdir) == (str(tree.db), str(tree.logs))
    ads = c.dests["ads"]
    assert ads.domainlist == str(tree.db / "ads" / "domains")
    assert ads.urllist == str(tree.db / "dest" / "ads" / "urllist")
    assert ads.expressionlist == str(tree.db / "dest" / "ads" / "expressionlist")
    assert ads.log == LogSpec(str(tree.logs / "ads.log"), anonymous=True, verbose=False)


def test_defaults_apply_without_dbhome_and_logdir(tree):
    tree.file("x/domains")
    c = tree.load("dest x {\n domainlist x/domains\n}\n" + DEFAULT_ACL)
    assert (c.dbhome, c.logdir) == (str(tree.db), str(tree.logs))
    tree.write(DEFAULT_ACL)
    plain = load_config(tree.conf)
    assert (plain.dbhome, plain.logdir) == ("/var/lib/squidguard/db", "/var/log/squidguard")


def test_relative_dbhome_is_taken_from_the_current_directory(tree, monkeypatch):
    tree.file("x/domains")
    monkeypatch.chdir(tree.root)
    c = tree.load('dbhome "db"\ndest x {\n domainlist x/domains\n}\n' + DEFAULT_ACL)
    assert c.dbhome == str(tree.db)
    assert c.dests["x"].domainlist == str(tree.db / "x" / "domains")


def test_absolute_list_and_log_paths_stay(tree):
    lst = tree.file("elsewhere/list")
    c = tree.load(f"dest x {{\n domainlist {lst}\n logfile verbose {tree.root}/x.log\n}}\n"
                  + DEFAULT_ACL)
    assert c.dests["x"].domainlist == str(lst)
    assert c.dests["x"].log == LogSpec(str(tree.root / "x.log"), verbose=True)


def test_time_block_elements(tree):
    c = tree.load(
        "time t {\n"
        " weekly mtwhf 08:00-12:00 13:00-18:00\n"  # two elements
        " weekly saturday , sundays 10:00 - 11:00\n"
        " weekly * 00:00-24:00\n"
        " weekly SA 01:00-02:00\n"  # letters in any case
        " date *-12-25\n"
        " date 2024.01.01-2024.01.03 09:00-10:00\n"
        " date 2024-02-30\n"
        "}\n" + DEFAULT_ACL)
    assert c.times["t"].elements == [
        TimeElement(frozenset({0, 1, 2, 3, 4}), None, None, 480, 720),
        TimeElement(frozenset({0, 1, 2, 3, 4}), None, None, 780, 1080),
        TimeElement(frozenset({5, 6}), None, None, 600, 660),
        TimeElement(frozenset(range(7)), None, None, 0, 1440),
        TimeElement(frozenset({5, 6}), None, None, 60, 120),
        TimeElement(None, (None, 12, 25), None, 0, 1439),
        TimeElement(None, (2024, 1, 1), (2024, 1, 3), 540, 600),
        TimeElement(None, (2024, 2, 30), None, 0, 1439),
    ]


def test_src_block_values(tree):
    tree.file("lab.ips", "# comment line\n10.5.0.1 10.6.0.0/16,10.7.0.1 # tail\n"
                         "  10.8.0.1-10.8.0.3\nabc 10.9.0.1\n10.10.0.1xyz\n")
    tree.file("users.txt", "carol:x:1000:1000::/home/carol:/bin/sh\nDave, eve\n#frank\n")
    c = tree.load(
        "time t {\n weekly * 08:00-09:00\n}\n"
        "src lab {\n"
        " ip 10.0.0.0/24 192.168.4.7/255.255.255.0 10.1.0.1-10.1.0.9 , 172.16.0.1\n"
        " ip 10.2.0.1 - 10.2.0.5 010.003.0.1,10.4.0.1\n"
        " iplist lab.ips\n"
        ' user Alice "Bob Smith"\n'
        " userlist users.txt\n"
        " domain lab.example other.example\n"
        " outside t\n"
        " logfile anonymous verbose lab.log\n"
        " continue\n"
        "}\n" + DEFAULT_ACL)
    (src,) = c.sources
    assert src.ips == [
        IPEntry("mask", v4("10.0.0.0"), v4("255.255.255.0")),
        IPEntry("mask", v4("192.168.4.7"), v4("255.255.255.0")),  # netmask form not masked
        IPEntry("range", v4("10.1.0.1"), v4("10.1.0.9")),
        IPEntry("mask", v4("172.16.0.1"), 0xFFFFFFFF),
        IPEntry("range", v4("10.2.0.1"), v4("10.2.0.5")),
        IPEntry("mask", v4("10.3.0.1"), 0xFFFFFFFF),  # leading zeros are decimal
        IPEntry("mask", v4("10.4.0.1"), 0xFFFFFFFF),
        # from the iplist: "abc" ends its line, "xyz" is cut off
        IPEntry("mask", v4("10.5.0.1"), 0xFFFFFFFF),
        IPEntry("mask", v4("10.6.0.0"), v4("255.255.0.0")),
        IPEntry("mask", v4("10.7.0.1"), 0xFFFFFFFF),
        IPEntry("range", v4("10.8.0.1"), v4("10.8.0.3")),
        IPEntry("mask", v4("10.10.0.1"), 0xFFFFFFFF),
    ]
    assert src.has_ip and src.has_user and src.has_content
    assert src.users == {"alice", "bob smith", "carol", "dave", "eve"}
    assert src.domains == ["lab.example", "other.example"]
    assert src.restriction == Restriction(OUTSIDE, "t")
    assert src.log == LogSpec(str(tree.logs / "lab.log"), anonymous=True, verbose=True)
    assert src.cont
    assert (src.pos.line, src.pos.col) == (4, 5)


def test_cidr_is_masked(tree):
    c = tree.load("src s {\n ip 192.168.5.7/24 1.2.3.4/0\n}\n" + DEFAULT_ACL)
    assert c.sources[0].ips == [IPEntry("mask", v4("192.168.5.0"), v4("255.255.255.0")),
                                IPEntry("mask", 0, 0)]


def test_ipv6_is_accepted_as_version_6(tree):
    c = tree.load("src s {\n ip 2001:db8::/32 ::1 fe80::1-fe80::9\n}\n" + DEFAULT_ACL)
    net = ipaddress.IPv6Network("2001:db8::/32")
    assert c.sources[0].ips == [
        IPEntry("mask", int(net.network_address), int(net.netmask), 6),
        IPEntry("mask", 1, (1 << 128) - 1, 6),
        IPEntry("range", int(ipaddress.IPv6Address("fe80::1")),
                int(ipaddress.IPv6Address("fe80::9")), 6),
    ]


def test_empty_iplist_leaves_the_source_without_ip(tree):
    tree.file("none.ips", "# nothing\n")
    c = tree.load("src s {\n iplist none.ips\n user bob\n}\n" + DEFAULT_ACL)
    # squidGuard then matches bob from any address (checked with the real binary).
    assert not c.sources[0].has_ip and c.sources[0].has_content


def test_dest_block_values(tree):
    tree.file("ads/domains")
    c = tree.load(
        "time t {\n weekly * 08:00-09:00\n}\n"
        "rew tidy {\n s@^http://a\\@b/@http://c\\}/@ir\n s@x y@z@\n}\n"
        "destination ads {\n domainlist ads/domains\n redirect 302:http://block/?u=%u&c=%c\n"
        " rewrite tidy\n within t\n}\n" + DEFAULT_ACL)
    ads = c.dests["ads"]
    assert (ads.redirect, ads.rewrite) == ("302:http://block/?u=%u&c=%c", "tidy")
    assert ads.restriction == Restriction(WITHIN, "t")
    assert ads.urllist is None and ads.expressionlist is None and ads.has_content
    rules = c.rewrites["tidy"].rules
    assert [(r.pattern, r.replacement, r.flags) for r in rules] == [
        ("^http://a@b/", "http://c}/", "ir"), ("x y", "z", "")]
    assert (rules[1].pos.line, rules[1].pos.col) == (6, 2)


def test_rewrite_block_within_and_log(tree):
    c = tree.load("time t {\n weekly * 08:00-09:00\n}\n"
                  "rewrite r {\n s@^a@b@gR\n outside t\n logfile r.log\n}\n" + DEFAULT_ACL)
    rw = c.rewrites["r"]
    assert rw.rules[0].flags == "gR"
    assert rw.restriction == Restriction(OUTSIDE, "t")
    assert rw.log == LogSpec(str(tree.logs / "r.log"))


def test_acl_block_values(tree):
    tree.file("ads")
    c = tree.load(
        "time t {\n weekly * 08:00-09:00\n}\n"
        "src s {\n ip 10.0.0.1\n}\n"
        "dest ads {\n domainlist ads\n}\n"
        "rew r {\n s@^a@b@\n}\n"
        "acl {\n"
        " s within t {\n  pass !ads any\n } else {\n  pass none\n  redirect default\n"
        "  rewrite none\n }\n"
        " s outside t {\n  pass ads !in-addr\n  rewrite r\n  redirect http://x/\n }\n"
        " default {\n  pass !ads !in-addr all\n  redirect http://block/default\n"
        "  logfile default.log\n  rewrite r\n }\n"
        "}\n")
    first, second, default = c.acls
    assert (first.source, first.restriction) == ("s", Restriction(WITHIN, "t"))
    assert first.branch.passes == [PassItem("ads", True), PassItem("all")]
    assert first.other is not None
    assert first.other.passes == [PassItem("none")]
    assert (first.other.redirect, first.other.rewrite) == ("default", "none")
    assert second.restriction == Restriction(OUTSIDE, "t") and second.other is None
    assert second.branch.passes == [PassItem("ads"), PassItem("in-addr", True)]
    assert (second.branch.rewrite, second.branch.redirect) == ("r", "http://x/")
    assert c.default_acl is default
    assert default.branch.passes == [PassItem("ads", True), PassItem("in-addr", True),
                                     PassItem("all")]
    assert default.branch.log == LogSpec(str(tree.logs / "default.log"))
    assert default.branch.redirect == "http://block/default"


def test_acl_without_pass_keeps_none(tree):
    c = tree.load("acl {\n default {\n }\n}\n")
    assert c.acls[0].branch.passes is None


def test_comments_anywhere_and_quoted_paths(tree):
    tree.file("my list/domains")
    c = tree.load(
        "# top comment\n"
        "dest x { # after brace\n"
        '  domainlist "my list/domains" # after a statement\n'
        "  redirect http://x/#fragment-is-a-comment\n"
        "} # after a block\n"
        "acl {\n default { pass !x all } # one line\n}\n")
    assert c.dests["x"].domainlist == str(tree.db / "my list" / "domains")
    assert c.dests["x"].redirect == "http://x/"
    assert c.acls[0].branch.passes == [PassItem("x", True), PassItem("all")]


def test_leniencies(tree):
    tree.file("ads")
    text = ("  dest ads {\n   domainlist ads\n  }\n"
            "acl {\n default {\n  pass !ads, all\n }\n}\n")
    tree.conf.write_bytes(text.replace("\n", "\r\n").encode())
    c = load_config(tree.conf, dbhome=str(tree.db), logdir=str(tree.logs))
    assert c.dests["ads"].domainlist == str(tree.db / "ads")
    assert c.acls[0].branch.passes == [PassItem("ads", True), PassItem("all")]


def test_source_and_order_are_kept(tree):
    c = tree.load("src b {\n ip 1.1.1.1\n}\nsource a {\n ip 2.2.2.2\n}\n" + DEFAULT_ACL)
    assert [s.name for s in c.sources] == ["b", "a"]


@pytest.mark.parametrize("word", ["continue", "continuous"])
def test_continue_spellings(tree, word):
    c = tree.load(f"src s {{\n ip 1.1.1.1\n {word}\n}}\n" + DEFAULT_ACL)
    assert c.sources[0].cont


def test_config_path_is_kept_as_given(tree):
    tree.write(DEFAULT_ACL)
    c = load_config(os.fspath(tree.conf))
    assert c.path == str(tree.conf)

"""The welcome block's shared-* lines (issue 12): what they give, and their errors."""

from __future__ import annotations

import pytest

from squidguard_bloom.core.config.model import Pos, SharedConfig

from .conftest import DEFAULT_ACL


def welcome(*lines: str) -> str:
    body = "".join(f" {x}\n" for x in lines)
    return DEFAULT_ACL + "welcome {\n redirect http://portal.example/\n" + body + "}\n"


def test_shared_lines_give_a_shared_config(tree):
    conf = tree.load(welcome("shared redis://10.0.0.5:6379/2", "shared-user proxy",
                             "shared-password-file secret/redis.pass", "shared-deadline 20ms",
                             "shared-fallback local", "shared-prefix isp:welcome"))
    assert conf.welcome is not None
    assert conf.welcome.shared == SharedConfig(
        urls=("redis://10.0.0.5:6379/2",), pos=Pos(str(tree.conf), 8, 2), cluster=False,
        user="proxy", password_file=str(tree.db / "secret" / "redis.pass"),
        password_pos=Pos(str(tree.conf), 10, 2), deadline=0.02, fallback="local", shards=1,
        prefix="isp:welcome")


def test_cluster_seed_list_and_defaults(tree):
    conf = tree.load(welcome("shared cluster redis://10.0.0.1:7000 rediss://10.0.0.2:7000"))
    assert conf.welcome is not None
    shared = conf.welcome.shared
    assert shared is not None
    assert (shared.urls, shared.cluster, shared.shards, shared.deadline, shared.fallback,
            shared.prefix, shared.user, shared.password_file) == (
        ("redis://10.0.0.1:7000", "rediss://10.0.0.2:7000"), True, 16, 0.05, "seen",
        "sgb:welcome", None, None)


def test_no_shared_line_no_shared_config(tree):
    conf = tree.load(welcome())
    assert conf.welcome is not None and conf.welcome.shared is None


@pytest.mark.parametrize(("lines", "expected"), [
    (("shared http://10.0.0.5/",),
     "8:9: error: welcome shared: expected a URL redis://HOST:PORT/DB, rediss://HOST:PORT/DB "
     "or unix:///PATH/redis.sock, or 'cluster' and the cluster's nodes as redis://HOST:PORT, "
     "found 'http://10.0.0.5/'"),
    (("shared redis://:pw@10.0.0.5/",),
     "8:9: error: welcome shared: write no password in the URL: put it in a file named by "
     "shared-password-file"),
    (("shared redis://a:1 redis://b:2",),
     "8:21: error: found 'redis://b:2', expected one URL after welcome shared (several "
     "nodes: shared cluster URL URL ...)"),
    (("shared cluster",),
     "8:2: error: expected the cluster's nodes after shared cluster, e.g. shared cluster "
     "redis://10.0.0.1:6379 redis://10.0.0.2:6379"),
    (("shared cluster unix:///run/redis.sock",),
     "8:17: error: welcome shared: a cluster's nodes are reached by TCP: found "
     "'unix:///run/redis.sock'"),
    (("shared unix://run/redis.sock",),
     "8:9: error: welcome shared: expected unix:// and an absolute socket path, found "
     "'unix://run/redis.sock'"),
    (("shared redis://h:1/0", "shared-deadline 0"),
     "9:18: error: welcome shared-deadline: expected a time from 1ms to 10s such as 50ms or "
     "0.2s, found '0'"),
    (("shared redis://h:1/0", "shared-deadline 1m"),
     "9:18: error: welcome shared-deadline: expected a time from 1ms to 10s such as 50ms or "
     "0.2s, found '1m'"),
    (("shared redis://h:1/0", "shared-fallback open"),
     "9:18: error: welcome shared-fallback: expected seen (no welcome while Redis is "
     "unreachable) or local (this proxy's own filter decides meanwhile), found 'open'"),
    (("shared redis://h:1/0", "shared-shards 0"),
     "9:16: error: welcome shared-shards: expected a number of shard keys from 1 to 16384 "
     "(one per cluster slot at most), found '0'"),
    (("shared redis://h:1/0", "shared-shards 16385"),
     "9:16: error: welcome shared-shards: expected a number of shard keys from 1 to 16384 "
     "(one per cluster slot at most), found '16385'"),
    (("shared redis://h:1/0", "shared-prefix a/b"),
     "9:16: error: welcome shared-prefix: expected a key prefix of letters, digits and "
     "_ . : - such as sgb:welcome, found 'a/b'"),
    (("shared-deadline 50ms",),
     "8:2: error: welcome shared-deadline needs a line 'shared URL' naming the Redis server"),
    (("shared redis://h:1/0", "shared-password-file a b"),
     "9:25: error: found 'b', expected one file after welcome shared-password-file"),
])
def test_shared_errors_name_the_line(tree, lines, expected):
    assert tree.errors(welcome(*lines)) == [expected]

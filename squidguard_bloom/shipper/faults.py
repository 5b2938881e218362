"""The shipper's fault kinds, and the tags that carry them in its log lines.

The prose of a warning names whatever was going on (the SFTP request in
flight, the library's wording of the error, the hint for the operator) and
may change from one occurrence of the same fault to the next. The tag before
it does not: every warning about the link and every "giving up" error starts
with ``[fault=KIND]``, and the link coming back is logged with ``[link=up]``
(first connection) or ``[link=restored]``. Operators alert on the tags; the
shipper itself decides "same fault as before, no new warning" by the kind.
"""

from __future__ import annotations

from enum import StrEnum


class Fault(StrEnum):
    """What went wrong, in one stable word (the ``KIND`` of ``[fault=KIND]``)."""

    # An established link failed: retried with back-off.
    LOST = "lost"  # reset, closed by the monitor, its sshd session killed
    STALLED = "stalled"  # the monitor stopped answering SSH keepalives
    HUNG = "hung"  # an SFTP request got no answer within write_timeout
    # A connection attempt failed: retried with back-off.
    REFUSED = "refused"  # nothing listens on the port (sshd down or restarting)
    UNRESOLVED = "unresolved"  # the host name does not resolve
    CONNECT_TIMEOUT = "connect-timeout"  # no SSH handshake within connect_timeout
    NO_SFTP = "no-sftp"  # sshd refused the SFTP subsystem
    CONNECT_FAILED = "connect-failed"  # any other failure while connecting
    # The monitor answered, with an error: retried with back-off.
    REMOTE_REFUSED = "remote-refused"  # a create or write refused: disk full, quota, rights
    # Only an operator can fix these: the shipper gives up.
    HOST_KEY = "host-key"  # the monitor's host key is unknown, revoked or changed
    AUTH = "auth"  # the monitor refused the key
    CONFIG = "config"  # the configuration, the key file or known_hosts cannot be used
    CHECKPOINT = "checkpoint"  # the checkpoint cannot be read or written


def fault_tag(fault: Fault) -> str:
    """``[fault=KIND]``, the first word of a line that reports ``fault``."""
    return f"[fault={fault}]"


LINK_UP = "[link=up]"  # the first connection works end to end
LINK_RESTORED = "[link=restored]"  # the link works again after a fault

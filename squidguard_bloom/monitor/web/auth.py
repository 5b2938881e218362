"""The dashboard's accounts: scrypt password hashes, sessions, CSRF tokens, login rate limits.

* Passwords are stored as ``scrypt$N$r$p$salt$hash`` (stdlib ``hashlib.scrypt``,
  N=2**14, r=8, p=1, 16-byte salt, 32-byte hash), compared in constant time.
* A session cookie is 32 random bytes (URL-safe base64); the database keeps
  only its SHA-256, with the session's CSRF token, its last use (idle expiry)
  and an absolute expiry.
* Failed logins are limited per client address and per user name: after
  ``limit`` failures within ``window`` seconds, further attempts from that
  address or for that name are refused until the oldest failure ages out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.errors import MonitorConfigError

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD = 10
USER_NAME_MAX = 64

SESSION_IDLE = 8 * 3600.0  # a session unused this long ends
SESSION_MAX = 7 * 86400.0  # and every session ends after this long


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The stored form of password."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, dklen=HASH_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether password matches a stored ``scrypt$...`` hash (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=len(want), maxmem=64 << 20)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A valid hash of an unknown password: logins for names that do not exist cost the same
# scrypt work as real ones, so timing does not tell which names exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def check_user_name(name: str) -> str:
    """name if it can be an account name, else MonitorConfigError saying what is allowed."""
    if not (0 < len(name) <= USER_NAME_MAX) or not name.isprintable() or name != name.strip():
        raise MonitorConfigError(f"a user name is 1 to {USER_NAME_MAX} printable characters "
                                 "without leading or trailing spaces")
    return name


def set_user(db: Database, name: str, password: str) -> bool:
    """Create user name, or set a new password (ending its sessions); True if created."""
    check_user_name(name)
    if len(password) < MIN_PASSWORD:
        raise MonitorConfigError(f"the password must have at least {MIN_PASSWORD} characters")
    stored = hash_password(password)
    with db.transaction():
        uid = db.scalar("SELECT id FROM users WHERE name = ?", (name,))
        if uid is None:
            db.execute("INSERT INTO users (name, password, created) VALUES (?, ?, ?)",
                       (name, stored, time.time()))
            return True
        db.execute("UPDATE users SET password = ? WHERE id = ?", (stored, uid))
        db.execute("DELETE FROM sessions WHERE user_id = ?", (uid,))
        return False


def verify_user(db: Database, name: str, password: str) -> int | None:
    """The user's id if name and password match, else None."""
    rows = db.execute("SELECT id, password FROM users WHERE name = ?", (name,))
    if not rows:
        check_password(password, _DUMMY_HASH)
        return None
    uid, stored = rows[0]
    return int(uid) if check_password(password, stored) else None


@dataclass(frozen=True)
class Session:
    """A logged-in session, as a request sees it."""

    user_id: int
    user: str
    csrf: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def new_session(db: Database, user_id: int, now: float | None = None) -> tuple[str, Session]:
    """(cookie value, session) for a user who just logged in."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with db.transaction():
        db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
        db.execute("INSERT INTO sessions (token_hash, user_id, csrf, created, seen, expires) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (_token_hash(token), user_id, csrf, now, now, now + SESSION_MAX))
    name = db.scalar("SELECT name FROM users WHERE id = ?", (user_id,))
    return token, Session(user_id, str(name), csrf)


def find_session(db: Database, token: str, now: float | None = None) -> Session | None:
    """The live session of a cookie value, or None; marks it used."""
    if not token or len(token) > 128:
        return None
    now = time.time() if now is None else now
    key = _token_hash(token)
    rows = db.execute(
        "SELECT s.user_id, u.name, s.csrf, s.seen, s.expires FROM sessions s "
        "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?", (key,))
    if not rows:
        return None
    uid, name, csrf, seen, expires = rows[0]
    if now > expires or now - seen > SESSION_IDLE:
        db.execute("DELETE FROM sessions WHERE token_hash = ?", (key,))
        return None
    if now - seen > 60:  # one write a minute at most per session
        db.execute("UPDATE sessions SET seen = ? WHERE token_hash = ?", (now, key))
    return Session(int(uid), str(name), str(csrf))


def end_session(db: Database, token: str) -> None:
    """Log a cookie out."""
    db.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a CSRF token."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class LoginLimiter:
    """Counts failed logins per address and per user name in a sliding window."""

    def __init__(self, limit: int = 5, window: float = 900.0, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and now - q[0] >= self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, keys: list[str], now: float | None = None) -> float:
        """0 if these keys may try now, else seconds until they may."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for key in keys:
            q = self._recent(key, now)
            if len(q) >= self.limit:
                wait = max(wait, self.window - (now - q[-self.limit]))
        return wait

    def failed(self, keys: list[str], now: float | None = None) -> None:
        """Record one failed attempt for every key."""
        now = time.monotonic() if now is None else now
        if len(self._failures) >= self.max_keys:  # bounded memory under a flood of names
            self._failures.clear()
        for key in keys:
            self._recent(key, now)
            self._failures.setdefault(key, deque(maxlen=self.limit * 4)).append(now)

    def succeeded(self, keys: list[str]) -> None:
        """Forget the failures of keys after a good login."""
        for key in keys:
            self._failures.pop(key, None)

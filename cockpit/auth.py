"""Users, roles, device tokens and sessions in one SQLite file.

Framework-free: the web layer calls these store and check functions. Nothing
here ships a default user, password or secret; every credential is created by
an operator (`add_user`, `add_device`).

Secrets at rest:
- passwords: argon2id hashes (argon2-cffi), upgraded on login when the
  hasher's parameters change;
- device and session tokens: `secrets.token_urlsafe(32)` with a readable
  prefix, stored only as SHA-256. A token has 256 bits of entropy, so a fast
  hash is enough (no brute force possible) and lets us look a token up by its
  hash. Because lookups go through the hash, no secret is ever compared in
  Python; the database index compares hashes, which tells an attacker nothing
  about a valid token.

Concurrency: one `sqlite3` connection per store, guarded by a lock; several
processes may open the same file (WAL, busy timeout). `verify_password` and
`add_user`/`set_password` spend tens of milliseconds in argon2 (outside the
lock); an asyncio server should call them via `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeGuard, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "DEVICE_CACHE_TTL_S",
    "DEVICE_TOKEN_PREFIX",
    "FEEDS",
    "LOCKOUT_S",
    "LOGIN_WINDOW_S",
    "MAX_LOGIN_FAILURES",
    "MIN_PASSWORD_LENGTH",
    "PERSONAL_DATA_ROLES",
    "ROLES",
    "SESSION_TOKEN_PREFIX",
    "WRITE_ROLES",
    "AuthError",
    "AuthStore",
    "Device",
    "Role",
    "User",
    "can_write",
    "device_may_post",
]

# wall: a control-room wall display, read-only and never shown personal data.
Role = Literal["admin", "commander", "operator", "viewer", "trainer", "wall"]
ROLES: tuple[Role, ...] = get_args(Role)
# May write journal entries, acknowledge alerts, draw hazards.
WRITE_ROLES: frozenset[Role] = frozenset({"admin", "commander", "operator"})
# May ask for personal fields of A.D.Le.R. detections (need to know: each time, audited).
PERSONAL_DATA_ROLES: frozenset[Role] = frozenset({"admin", "commander", "operator"})
# What a device token may post to (a subset of `cockpit.events.FEEDS`: the
# others are produced inside the server, not posted by devices).
FEEDS: tuple[str, ...] = ("telemetry", "video", "adler", "ttn", "cap", "cot")

MIN_PASSWORD_LENGTH = 10
MAX_LOGIN_FAILURES = 10
LOGIN_WINDOW_S = 300.0
LOCKOUT_S = 300.0
# Bounds how long a token revoked by another process keeps working here.
DEVICE_CACHE_TTL_S = 5.0
# Prefixes make leaked tokens recognisable (secret scanners, logs); not secrets.
DEVICE_TOKEN_PREFIX = "cdt_"  # noqa: S105
SESSION_TOKEN_PREFIX = "cst_"  # noqa: S105

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# token_urlsafe(32) gives 43 characters; anything much longer is not ours and
# is rejected before hashing.
_MAX_TOKEN_LENGTH = 128
# Failures for names that can never be users share one bucket, so junk input
# (any length, lone surrogates) never reaches the database as a key.
_INVALID_NAME_KEY = "?invalid"
_DEVICE_CACHE_MAX = 1024
_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    feeds TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_name);
CREATE TABLE IF NOT EXISTS login_failures (
    name TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_name ON login_failures(name, at);
CREATE TABLE IF NOT EXISTS lockouts (
    name TEXT PRIMARY KEY,
    until REAL NOT NULL
);
"""


class AuthError(Exception):
    """Invalid input or state; the message names the field and the reason."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role


@dataclass(frozen=True)
class Device:
    name: str
    feeds: frozenset[str]


def can_write(user: User) -> bool:
    return user.role in WRITE_ROLES


def device_may_post(device: Device, feed: str) -> bool:
    return feed in device.feeds


def _is_role(value: str) -> TypeGuard[Role]:
    return value in ROLES


def _short(value: str) -> str:
    # Keep error messages readable when the input is huge.
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _check_name(name: str) -> None:
    if not _NAME_RE.fullmatch(name):
        raise AuthError(f"name: {_short(name)} must be 1-64 characters from A-Z a-z 0-9 _ . -")


def _check_role(role: str) -> Role:
    if not _is_role(role):
        raise AuthError(f"role: {_short(role)} is not one of {', '.join(ROLES)}")
    return role


def _check_password(password: str) -> None:
    # The password itself never appears in a message.
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(
            f"password: must be at least {MIN_PASSWORD_LENGTH} characters (got {len(password)})"
        )
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise AuthError("password: contains characters that are not valid text") from None


def _check_feeds(feeds: Iterable[str]) -> frozenset[str]:
    if isinstance(feeds, str):
        # A bare string would be iterated character by character.
        raise AuthError(f"feeds: give a list of feeds, not the string {_short(feeds)}")
    result = frozenset(feeds)
    for feed in sorted(result):
        if feed not in FEEDS:
            raise AuthError(f"feeds: {_short(feed)} is not one of {', '.join(FEEDS)}")
    if not result:
        raise AuthError(f"feeds: at least one of {', '.join(FEEDS)} is required")
    return result


def _token_hash(token: str, prefix: str) -> str | None:
    """SHA-256 of a plausible token, or None for anything we never issue."""
    if not token.startswith(prefix) or len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
        return None
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _failure_key(name: str) -> str:
    return name if _NAME_RE.fullmatch(name) else _INVALID_NAME_KEY


def _create_private_file(path: Path) -> None:
    # Create the file ourselves so it is 0600 from the first byte; SQLite gives
    # its -wal and -shm files the same mode as the database file.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process won the race, or the file was already there
    os.close(fd)


class AuthStore:
    """Users, devices, sessions and login throttling in one SQLite file."""

    def __init__(
        self,
        path: Path,
        *,
        session_ttl_s: float = 12 * 3600,
        clock: Callable[[], float] = time.time,
        password_hasher: PasswordHasher | None = None,
    ) -> None:
        if not session_ttl_s > 0:
            raise ValueError(f"session_ttl_s: must be positive (got {session_ttl_s})")
        self._session_ttl_s = session_ttl_s
        # Wall clock, not monotonic: expiry times are shared between processes.
        self._clock = clock
        self._hasher = password_hasher or PasswordHasher()
        self._lock = threading.Lock()
        # token hash -> (device, cached_at); only hits are cached, so a newly
        # issued token works at once and junk tokens cannot grow the cache.
        self._device_cache: dict[str, tuple[Device, float]] = {}
        # Verified against when the user does not exist, so a wrong name costs
        # as much time as a wrong password. Random: it must match nothing.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))

        _create_private_file(path)
        # Autocommit mode; multi-statement writes use explicit BEGIN IMMEDIATE.
        self._db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            # Overwrite deleted rows (old hashes, revoked tokens) instead of
            # leaving them in free pages.
            self._db.execute("PRAGMA secure_delete = ON")
            with self._transaction():
                self._create_schema()
        except BaseException:
            self._db.close()
            raise

    def _create_schema(self) -> None:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if int(version) == 0:
            self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        elif int(version) > _SCHEMA_VERSION:
            raise AuthError(f"path: schema version {version} is newer than this program")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so concurrent writers wait
        # (busy_timeout) instead of failing half-way.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._device_cache.clear()

    def __enter__(self) -> AuthStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- users ---------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str, *, replace: bool = False) -> User:
        """Create a user; with `replace=True` an existing user gets the new role and password."""
        _check_name(name)
        checked_role = _check_role(role)
        _check_password(password)
        password_hash = self._hasher.hash(password)  # slow: outside the lock
        with self._lock, self._transaction():
            if replace:
                self._db.execute(
                    "INSERT INTO users (name, role, password_hash) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET "
                    "role = excluded.role, password_hash = excluded.password_hash",
                    (name, checked_role, password_hash),
                )
                # A new password logs out everyone holding the old one.
                self._db.execute("DELETE FROM sessions WHERE user_name = ?", (name,))
            else:
                cursor = self._db.execute(
                    "INSERT INTO users (name, role, password_hash) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name, checked_role, password_hash),
                )
                if cursor.rowcount == 0:
                    raise AuthError(f"name: user {name!r} exists")
        return User(name, checked_role)

    def set_password(self, name: str, password: str) -> None:
        """Change a password and end that user's sessions."""
        _check_name(name)
        _check_password(password)
        password_hash = self._hasher.hash(password)
        with self._lock, self._transaction():
            cursor = self._db.execute(
                "UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name)
            )
            if cursor.rowcount == 0:
                raise AuthError(f"name: no user {name!r}")
            self._db.execute("DELETE FROM sessions WHERE user_name = ?", (name,))

    def remove_user(self, name: str) -> None:
        """Delete a user and their sessions."""
        _check_name(name)
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM sessions WHERE user_name = ?", (name,))
            cursor = self._db.execute("DELETE FROM users WHERE name = ?", (name,))
            if cursor.rowcount == 0:
                raise AuthError(f"name: no user {name!r}")

    def list_users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT name, role FROM users ORDER BY name").fetchall()
        return [self._user(str(name), str(role)) for name, role in rows]

    @staticmethod
    def _user(name: str, role: str) -> User:
        if not _is_role(role):
            # Only reachable if the file was edited by hand.
            raise AuthError(f"role: stored role {role!r} of user {name!r} is unknown")
        return User(name, role)

    def verify_password(self, name: str, password: str) -> User | None:
        """The user if the password is right and the name is not locked out, else None.

        Every failure counts towards the lockout of that name (see `locked_out`).
        """
        key = _failure_key(name)
        if self.locked_out(key):
            return None  # no hashing: under attack the lockout also saves CPU
        row = None
        if key == name:
            with self._lock:
                row = self._db.execute(
                    "SELECT role, password_hash FROM users WHERE name = ?", (name,)
                ).fetchone()
        stored_hash = str(row[1]) if row is not None else self._dummy_hash
        try:
            self._hasher.verify(stored_hash, password)
            ok = row is not None
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            ok = False
        if not ok or row is None:
            self.record_login_failure(key)
            return None
        user = self._user(name, str(row[0]))
        with self._lock:
            self._db.execute("DELETE FROM login_failures WHERE name = ?", (name,))
        if self._hasher.check_needs_rehash(stored_hash):
            new_hash = self._hasher.hash(password)
            with self._lock:
                # Only if nobody changed the password since we read it.
                self._db.execute(
                    "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                    (new_hash, name, stored_hash),
                )
        return user

    # -- login throttling ----------------------------------------------------

    def record_login_failure(self, name: str) -> None:
        """Count a failed login; the MAX_LOGIN_FAILURES-th within LOGIN_WINDOW_S locks the name."""
        key = _failure_key(name)
        now = self._clock()
        with self._lock, self._transaction():
            # Old failures no longer matter; pruning keeps the table small
            # even when an attacker tries many names.
            self._db.execute("DELETE FROM login_failures WHERE at <= ?", (now - LOGIN_WINDOW_S,))
            self._db.execute("DELETE FROM lockouts WHERE until <= ?", (now,))
            self._db.execute("INSERT INTO login_failures (name, at) VALUES (?, ?)", (key, now))
            (count,) = self._db.execute(
                "SELECT count(*) FROM login_failures WHERE name = ?", (key,)
            ).fetchone()
            if int(count) >= MAX_LOGIN_FAILURES:
                # Failures during a lockout are not recorded (verify_password
                # returns early), so the lock ends LOCKOUT_S after it began
                # and cannot be extended indefinitely by an attacker.
                self._db.execute(
                    "INSERT OR REPLACE INTO lockouts (name, until) VALUES (?, ?)",
                    (key, now + LOCKOUT_S),
                )

    def locked_out(self, name: str) -> bool:
        key = _failure_key(name)
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM lockouts WHERE name = ? AND until > ?", (key, self._clock())
            ).fetchone()
        return row is not None

    # -- devices -------------------------------------------------------------

    def add_device(self, name: str, feeds: Iterable[str]) -> str:
        """Register a device, or rotate its token; returns the token, shown only this once."""
        _check_name(name)
        checked = _check_feeds(feeds)
        token = DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_hash = _token_hash(token, DEVICE_TOKEN_PREFIX)
        assert token_hash is not None
        with self._lock:
            self._db.execute(
                "INSERT INTO devices (name, token_hash, feeds) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET "
                "token_hash = excluded.token_hash, feeds = excluded.feeds",
                (name, token_hash, ",".join(sorted(checked))),
            )
            self._forget_device(name)
        return token

    def revoke_device(self, name: str) -> None:
        _check_name(name)
        with self._lock:
            cursor = self._db.execute("DELETE FROM devices WHERE name = ?", (name,))
            self._forget_device(name)
        if cursor.rowcount == 0:
            raise AuthError(f"name: no device {name!r}")

    def _forget_device(self, name: str) -> None:
        # Immediate in this process; other processes drop it within the cache TTL.
        for key in [k for k, (d, _) in self._device_cache.items() if d.name == name]:
            del self._device_cache[key]

    def list_devices(self) -> list[Device]:
        with self._lock:
            rows = self._db.execute("SELECT name, feeds FROM devices ORDER BY name").fetchall()
        return [Device(str(name), frozenset(str(feeds).split(","))) for name, feeds in rows]

    def device_for_token(self, token: str) -> Device | None:
        token_hash = _token_hash(token, DEVICE_TOKEN_PREFIX)
        if token_hash is None:
            return None
        now = self._clock()
        with self._lock:
            cached = self._device_cache.get(token_hash)
            # The lower bound guards against the wall clock jumping backwards.
            if cached is not None and cached[1] <= now < cached[1] + DEVICE_CACHE_TTL_S:
                return cached[0]
            row = self._db.execute(
                "SELECT name, feeds FROM devices WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            if row is None:
                self._device_cache.pop(token_hash, None)
                return None
            device = Device(str(row[0]), frozenset(str(row[1]).split(",")))
            if len(self._device_cache) >= _DEVICE_CACHE_MAX:
                self._device_cache.clear()  # stale entries after many rotations
            self._device_cache[token_hash] = (device, now)
        return device

    # -- sessions ------------------------------------------------------------

    def create_session(self, user: User) -> str:
        """Start a session for an existing user; returns the token, shown only this once."""
        token = SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_hash = _token_hash(token, SESSION_TOKEN_PREFIX)
        assert token_hash is not None
        now = self._clock()
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
            exists = self._db.execute("SELECT 1 FROM users WHERE name = ?", (user.name,)).fetchone()
            if exists is None:
                raise AuthError(f"name: no user {user.name!r}")
            self._db.execute(
                "INSERT INTO sessions (token_hash, user_name, expires) VALUES (?, ?, ?)",
                (token_hash, user.name, now + self._session_ttl_s),
            )
        return token

    def user_for_session(self, token: str) -> User | None:
        """The session's user with their current role; None when unknown or expired."""
        token_hash = _token_hash(token, SESSION_TOKEN_PREFIX)
        if token_hash is None:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT users.name, users.role, sessions.expires FROM sessions "
                "JOIN users ON users.name = sessions.user_name "
                "WHERE sessions.token_hash = ?",
                (token_hash,),
            ).fetchone()
            if row is None:
                return None
            if float(row[2]) <= self._clock():
                self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))
                return None
        return self._user(str(row[0]), str(row[1]))

    def end_session(self, token: str) -> None:
        token_hash = _token_hash(token, SESSION_TOKEN_PREFIX)
        if token_hash is None:
            return
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    # -- monitoring ----------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counts for a health page.

        Keys: users, devices, active_sessions, login_failures (within the last
        LOGIN_WINDOW_S), locked_out (names currently locked).
        """
        now = self._clock()
        with self._lock:
            row = self._db.execute(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM devices), "
                "(SELECT count(*) FROM sessions WHERE expires > ?), "
                "(SELECT count(*) FROM login_failures WHERE at > ?), "
                "(SELECT count(*) FROM lockouts WHERE until > ?)",
                (now, now - LOGIN_WINDOW_S, now),
            ).fetchone()
        keys = ("users", "devices", "active_sessions", "login_failures", "locked_out")
        return {key: int(value) for key, value in zip(keys, row, strict=True)}

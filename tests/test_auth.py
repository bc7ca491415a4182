"""Behaviour of the auth store as users, devices and operators see it."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cockpit.auth import (
    DEVICE_CACHE_TTL_S,
    FEEDS,
    LOCKOUT_S,
    LOGIN_WINDOW_S,
    MAX_LOGIN_FAILURES,
    PERSONAL_DATA_ROLES,
    ROLES,
    AuthError,
    AuthStore,
    Device,
    User,
    can_write,
    device_may_post,
)

# Cheap argon2 parameters keep the suite fast; one test uses the defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PW = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "auth.sqlite"


@pytest.fixture
def store(db: Path, clock: Clock) -> Iterator[AuthStore]:
    with AuthStore(db, clock=clock, session_ttl_s=3600, password_hasher=FAST) as s:
        yield s


def file_bytes(db: Path) -> bytes:
    # In WAL mode fresh data may sit only in the -wal file: read all of them.
    return b"".join(
        p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()
    )


# -- users and passwords -----------------------------------------------------


def test_login_needs_the_users_own_password(store: AuthStore) -> None:
    alice = store.add_user("alice", "commander", PW)
    store.add_user("bob", "viewer", "bobs password 123")
    assert alice == User("alice", "commander")
    assert store.verify_password("alice", PW) == alice
    assert store.verify_password("alice", PW + "x") is None
    assert store.verify_password("alice", "bobs password 123") is None
    assert store.verify_password("carol", PW) is None
    assert store.verify_password("ALICE", PW) is None
    assert store.list_users() == [alice, User("bob", "viewer")]


def test_passwords_are_stored_as_argon2id_hashes_only(db: Path) -> None:
    password = "plaintext-canary-5f3a9c"
    with AuthStore(db) as store:  # production argon2 parameters
        store.add_user("alice", "admin", password)
        data = file_bytes(db)
        assert password.encode() not in data
        assert b"$argon2id$" in data  # the hash is there, so we did read the data
        assert store.verify_password("alice", password) == User("alice", "admin")
    (stored,) = sqlite3.connect(db).execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$")
    assert password not in stored


def test_database_files_are_private(db: Path, clock: Clock) -> None:
    with AuthStore(db, clock=clock, password_hasher=FAST) as store:
        store.add_user("alice", "admin", PW)
        files = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
        assert len(files) == 3  # WAL mode
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"role": "chief"},
            "role: 'chief' is not one of admin, commander, operator, viewer, trainer, wall",
        ),
        ({"password": "short"}, "password: must be at least 10 characters (got 5)"),
        ({"name": ""}, "name: ''"),
        ({"name": "a" * 65}, "name: 'aaaa"),
        ({"name": "bad name"}, "name: 'bad name'"),
        ({"name": "../etc"}, "name: '../etc'"),
        ({"name": "jürgen"}, "name: 'jürgen'"),
        ({"name": "alice\n"}, "name: 'alice\\n'"),
    ],
)
def test_invalid_user_input_names_the_field(
    store: AuthStore, kwargs: dict[str, str], message: str
) -> None:
    args = {"name": "alice", "role": "viewer", "password": PW} | kwargs
    with pytest.raises(AuthError) as err:
        store.add_user(args["name"], args["role"], args["password"])
    assert str(err.value).startswith(message)
    assert store.list_users() == []


def test_short_password_is_not_echoed(store: AuthStore) -> None:
    with pytest.raises(AuthError, match=r"^password: ") as err:
        store.add_user("alice", "viewer", "s3cr3t!")
    assert "s3cr3t!" not in str(err.value)


def test_existing_user_is_replaced_only_on_request(store: AuthStore) -> None:
    store.add_user("alice", "viewer", PW)
    with pytest.raises(AuthError, match=r"^name: user 'alice' exists$"):
        store.add_user("alice", "admin", "another password")
    assert store.verify_password("alice", PW) == User("alice", "viewer")

    assert store.add_user("alice", "admin", "another password", replace=True) == User(
        "alice", "admin"
    )
    assert store.verify_password("alice", PW) is None
    assert store.verify_password("alice", "another password") == User("alice", "admin")


def test_set_password_and_remove_user(store: AuthStore) -> None:
    alice = store.add_user("alice", "operator", PW)
    session = store.create_session(alice)
    store.set_password("alice", "new password 42")
    assert store.verify_password("alice", PW) is None
    assert store.verify_password("alice", "new password 42") == alice
    assert store.user_for_session(session) is None  # old sessions end with the old password

    session = store.create_session(alice)
    store.remove_user("alice")
    assert store.verify_password("alice", "new password 42") is None
    assert store.user_for_session(session) is None
    with pytest.raises(AuthError, match=r"^name: no user 'alice'$"):
        store.remove_user("alice")
    with pytest.raises(AuthError, match=r"^name: no user 'alice'$"):
        store.set_password("alice", "new password 43")
    with pytest.raises(AuthError, match=r"^name: no user 'alice'$"):
        store.create_session(alice)


def test_hash_is_upgraded_when_argon2_parameters_change(db: Path, clock: Clock) -> None:
    with AuthStore(db, clock=clock, password_hasher=FAST) as old:
        old.add_user("alice", "viewer", PW)
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    with AuthStore(db, clock=clock, password_hasher=stronger) as new:
        assert new.verify_password("alice", PW) == User("alice", "viewer")
    (stored,) = sqlite3.connect(db).execute("SELECT password_hash FROM users").fetchone()
    assert not stronger.check_needs_rehash(stored)
    assert "m=16,t=2,p=1" in stored


def test_roles() -> None:
    assert set(ROLES) == {"admin", "commander", "operator", "viewer", "trainer", "wall"}
    writers = {role for role in ROLES if can_write(User("x", role))}
    assert writers == {"admin", "commander", "operator"}
    assert {"admin", "commander", "operator"} == set(PERSONAL_DATA_ROLES)


# -- login throttling ---------------------------------------------------------


def test_repeated_failures_lock_the_name_for_five_minutes(store: AuthStore, clock: Clock) -> None:
    alice = store.add_user("alice", "viewer", PW)
    store.add_user("bob", "viewer", PW)
    for _ in range(MAX_LOGIN_FAILURES):
        assert not store.locked_out("alice")
        assert store.verify_password("alice", "wrong guess!") is None
        clock.advance(1)
    assert store.locked_out("alice")
    assert store.verify_password("alice", PW) is None  # even the right password
    assert store.verify_password("bob", PW) == User("bob", "viewer")  # others unaffected
    assert store.stats()["locked_out"] == 1

    clock.advance(LOCKOUT_S - 2)
    assert store.locked_out("alice")
    clock.advance(2)
    assert not store.locked_out("alice")
    assert store.verify_password("alice", PW) == alice


def test_failures_spread_out_or_reset_by_success_do_not_lock(
    store: AuthStore, clock: Clock
) -> None:
    alice = store.add_user("alice", "viewer", PW)
    for _ in range(3 * MAX_LOGIN_FAILURES):
        store.verify_password("alice", "wrong guess!")
        clock.advance(34)  # any 10 consecutive failures span more than 5 minutes
    assert not store.locked_out("alice")

    clock.advance(LOGIN_WINDOW_S)
    for _ in range(MAX_LOGIN_FAILURES - 1):
        store.verify_password("alice", "wrong guess!")
    assert store.verify_password("alice", PW) == alice
    store.verify_password("alice", "wrong guess!")
    assert not store.locked_out("alice")


def test_unknown_names_are_throttled_like_real_ones(store: AuthStore) -> None:
    # Otherwise the lockout would tell an attacker which names exist.
    for _ in range(MAX_LOGIN_FAILURES):
        assert store.verify_password("ghost", "wrong guess!") is None
    assert store.locked_out("ghost")
    assert store.stats()["login_failures"] == MAX_LOGIN_FAILURES


# -- devices ------------------------------------------------------------------


def test_device_token_works_for_its_feeds_only(store: AuthStore) -> None:
    token = store.add_device("drone-1", ["telemetry", "video"])
    assert token.startswith("cdt_")
    device = store.device_for_token(token)
    assert device == Device("drone-1", frozenset({"telemetry", "video"}))
    assert device_may_post(device, "telemetry")
    assert device_may_post(device, "video")
    for feed in set(FEEDS) - {"telemetry", "video"}:
        assert not device_may_post(device, feed)
    assert store.list_devices() == [device]


def test_unknown_feed_is_named(store: AuthStore) -> None:
    with pytest.raises(AuthError, match=r"^feeds: 'mavlink' is not one of telemetry, video"):
        store.add_device("drone-1", ["telemetry", "mavlink"])
    with pytest.raises(AuthError, match=r"^feeds: "):
        store.add_device("drone-1", [])
    with pytest.raises(AuthError, match=r"^feeds: give a list"):
        store.add_device("drone-1", "telemetry")
    with pytest.raises(AuthError, match=r"^name: "):
        store.add_device("drone 1", ["telemetry"])
    assert store.list_devices() == []


def test_device_token_is_not_stored(store: AuthStore, db: Path) -> None:
    token = store.add_device("drone-1", ["telemetry"])
    data = file_bytes(db)
    assert token.encode() not in data
    assert token.removeprefix("cdt_").encode() not in data
    assert hashlib.sha256(token.encode()).hexdigest().encode() in data


def test_rotating_a_device_token_invalidates_the_old_one(store: AuthStore) -> None:
    old = store.add_device("drone-1", ["telemetry"])
    assert store.device_for_token(old) is not None  # now cached
    new = store.add_device("drone-1", ["telemetry", "adler"])
    assert new != old
    assert store.device_for_token(old) is None
    assert store.device_for_token(new) == Device("drone-1", frozenset({"telemetry", "adler"}))


def test_revoked_token_stops_working(store: AuthStore) -> None:
    token = store.add_device("drone-1", ["telemetry"])
    assert store.device_for_token(token) is not None
    store.revoke_device("drone-1")
    assert store.device_for_token(token) is None  # same process: at once
    with pytest.raises(AuthError, match=r"^name: no device 'drone-1'$"):
        store.revoke_device("drone-1")


def test_token_revoked_elsewhere_stops_working_within_the_cache_window(
    db: Path, clock: Clock
) -> None:
    with (
        AuthStore(db, clock=clock, password_hasher=FAST) as ingest,
        AuthStore(db, clock=clock, password_hasher=FAST) as admin,
    ):
        token = admin.add_device("drone-1", ["telemetry"])
        assert ingest.device_for_token(token) is not None  # cached in the ingest process
        admin.revoke_device("drone-1")
        clock.advance(DEVICE_CACHE_TTL_S - 0.5)
        assert ingest.device_for_token(token) is not None  # tolerated staleness
        clock.advance(0.5)
        assert ingest.device_for_token(token) is None


def test_cache_does_not_outlive_a_clock_jump_backwards(db: Path, clock: Clock) -> None:
    with (
        AuthStore(db, clock=clock, password_hasher=FAST) as ingest,
        AuthStore(db, clock=clock, password_hasher=FAST) as admin,
    ):
        token = admin.add_device("drone-1", ["telemetry"])
        assert ingest.device_for_token(token) is not None
        admin.revoke_device("drone-1")
        clock.advance(-3600)
        assert ingest.device_for_token(token) is None


# -- sessions -----------------------------------------------------------------


def test_session_lasts_until_ttl(store: AuthStore, clock: Clock) -> None:
    alice = store.add_user("alice", "operator", PW)
    token = store.create_session(alice)
    assert token.startswith("cst_")
    assert store.user_for_session(token) == alice
    assert store.stats()["active_sessions"] == 1
    clock.advance(3600 - 1)
    assert store.user_for_session(token) == alice
    clock.advance(1)
    assert store.user_for_session(token) is None
    assert store.stats()["active_sessions"] == 0


def test_end_session_logs_out_only_that_session(store: AuthStore) -> None:
    alice = store.add_user("alice", "operator", PW)
    laptop, tablet = store.create_session(alice), store.create_session(alice)
    assert laptop != tablet
    store.end_session(laptop)
    assert store.user_for_session(laptop) is None
    assert store.user_for_session(tablet) == alice
    store.end_session(laptop)  # ending twice is harmless
    store.end_session("not a token")


def test_session_sees_role_changes(store: AuthStore) -> None:
    token = store.create_session(store.add_user("alice", "operator", PW))
    store.add_user("alice", "viewer", PW, replace=True)  # ends sessions: new password
    assert store.user_for_session(token) is None
    token = store.create_session(User("alice", "admin"))  # stale role in the caller's hands
    assert store.user_for_session(token) == User("alice", "viewer")


def test_session_token_is_not_stored(store: AuthStore, db: Path) -> None:
    token = store.create_session(store.add_user("alice", "operator", PW))
    data = file_bytes(db)
    assert token.removeprefix("cst_").encode() not in data
    assert hashlib.sha256(token.encode()).hexdigest().encode() in data


def test_tokens_are_not_interchangeable(store: AuthStore) -> None:
    session = store.create_session(store.add_user("alice", "admin", PW))
    device = store.add_device("drone-1", ["telemetry"])
    assert store.device_for_token(session) is None
    assert store.user_for_session(device) is None


# -- several processes ----------------------------------------------------------


def test_two_stores_on_one_file_share_everything(db: Path, clock: Clock) -> None:
    with (
        AuthStore(db, clock=clock, password_hasher=FAST) as a,
        AuthStore(db, clock=clock, password_hasher=FAST) as b,
    ):
        alice = a.add_user("alice", "commander", PW)
        assert b.verify_password("alice", PW) == alice
        token = b.add_device("robot-2", ["cot"])
        assert a.device_for_token(token) == Device("robot-2", frozenset({"cot"}))
        session = a.create_session(alice)
        assert b.user_for_session(session) == alice
        b.end_session(session)
        assert a.user_for_session(session) is None
        for _ in range(MAX_LOGIN_FAILURES):
            a.verify_password("alice", "wrong guess!")
        assert b.locked_out("alice")
        assert a.stats() == b.stats()


def test_another_process_sees_our_users_and_tokens(db: Path) -> None:
    with AuthStore(db, password_hasher=FAST) as store:
        store.add_user("alice", "trainer", PW)
        token = store.add_device("sensor-7", ["ttn"])
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from cockpit.auth import AuthStore\n"
                "s = AuthStore(Path(sys.argv[1]))\n"
                "print(s.verify_password('alice', sys.argv[2]), s.device_for_token(sys.argv[3]))\n"
                "s.add_user('bob', 'viewer', 'bobs password 123')",
                str(db),
                PW,
                token,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert "User(name='alice', role='trainer')" in child.stdout
        assert "Device(name='sensor-7'" in child.stdout
        assert store.verify_password("bob", "bobs password 123") == User("bob", "viewer")


def test_stats(store: AuthStore, clock: Clock) -> None:
    store.add_user("alice", "admin", PW)
    store.add_device("drone-1", ["video"])
    store.create_session(User("alice", "admin"))
    store.verify_password("alice", "wrong guess!")
    assert store.stats() == {
        "users": 1,
        "devices": 1,
        "active_sessions": 1,
        "login_failures": 1,
        "locked_out": 0,
    }
    clock.advance(3600)
    assert store.stats()["active_sessions"] == 0
    assert store.stats()["login_failures"] == 0


# -- property: nothing but an issued token opens anything -------------------------


@pytest.fixture
def issued(store: AuthStore) -> tuple[str, str]:
    device = store.add_device("drone-1", FEEDS)
    session = store.create_session(store.add_user("alice", "admin", PW))
    return device, session


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(
    candidate=st.one_of(
        st.text(),
        st.from_regex(r"c[ds]t_[A-Za-z0-9_-]{43}", fullmatch=True),
        st.builds(lambda s: "cdt_" + s, st.text()),
        st.builds(lambda s: "cst_" + s, st.text()),
    )
)
@example(candidate="")
@example(candidate="cdt_")
@example(candidate="cst_")
@example(candidate="cdt_\ud800")
@example(candidate="cdt_" + "A" * 10_000)
def test_only_issued_tokens_are_accepted(
    store: AuthStore, issued: tuple[str, str], candidate: str
) -> None:
    device, session = issued
    if candidate not in issued:
        assert store.device_for_token(candidate) is None
        assert store.user_for_session(candidate) is None
    # Near misses of real tokens fail too.
    for token in issued:
        for variant in (token[:-1], token + "A", token.upper(), " " + token, token + candidate):
            if variant not in issued:
                assert store.device_for_token(variant) is None
                assert store.user_for_session(variant) is None
    assert store.device_for_token(device) is not None
    assert store.user_for_session(session) is not None

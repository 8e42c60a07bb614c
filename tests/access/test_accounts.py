"""Logins, lock-out, sessions, second factor and API tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from sqlalchemy import Engine, func, select

from narcotrack.access.accounts import (
    ABSOLUTE_TIMEOUT,
    IDLE_TIMEOUT,
    LoginFailed,
    authenticate,
    check_totp,
    create_api_token,
    end_session,
    enrol_totp,
    release,
    resume_session,
    revoke_api_token,
    set_active,
    start_session,
    user_for_api_token,
)
from narcotrack.access.audit import verify_chain
from narcotrack.access.passwords import password_problem
from narcotrack.domain.models import UserIn
from narcotrack.errors import InvalidInput
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_user
from narcotrack.store.schema import ApiToken, AuditEvent, User, utcnow

PASSWORD = "mekong-river-2025"


@pytest.fixture
def user_id(engine: Engine) -> str:
    with session_scope(engine) as s:
        return create_user(s, UserIn(username="dara", org="KH-NACD", role="analyst", password=PASSWORD)).id


def _login(engine: Engine, password: str, now: dt.datetime | None = None) -> User:
    with session_scope(engine) as s:
        return authenticate(s, "dara", password, address="127.0.0.1", now=now)


def test_password_rules() -> None:
    assert password_problem("short") is not None
    assert password_problem("password123") is not None
    assert password_problem("Cambodia123") is not None  # common list is case-insensitive
    assert password_problem("dara-is-me-2025", "dara") is not None
    assert password_problem(PASSWORD, "dara") is None


def test_common_password_is_refused_at_creation(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="most common"), session_scope(engine) as s:
        create_user(s, UserIn(username="sok", org="KH-NACD", role="viewer", password="qwerty123"))


def test_login_and_failed_login_are_audited(engine: Engine, user_id: str) -> None:
    assert _login(engine, PASSWORD).id == user_id
    with pytest.raises(LoginFailed):
        _login(engine, "not-the-password")
    with engine.connect() as conn:
        actions = list(conn.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        assert actions == ["login", "login_failed"]
        assert verify_chain(conn).ok


def test_five_failures_in_fifteen_minutes_lock_until_released(engine: Engine, user_id: str) -> None:
    t0 = utcnow()
    for i in range(5):
        with pytest.raises(LoginFailed):
            _login(engine, "wrong", now=t0 + dt.timedelta(minutes=2 * i))
    with pytest.raises(LoginFailed):  # the right password no longer opens it
        _login(engine, PASSWORD, now=t0 + dt.timedelta(hours=3))
    with session_scope(engine) as s:
        release(s, user_id)
    assert _login(engine, PASSWORD, now=t0 + dt.timedelta(hours=3)).id == user_id


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock(engine: Engine, user_id: str) -> None:
    t0 = utcnow()
    for i in range(5):
        with pytest.raises(LoginFailed):
            _login(engine, "wrong", now=t0 + dt.timedelta(minutes=5 * i))
    assert _login(engine, PASSWORD, now=t0 + dt.timedelta(minutes=25)).id == user_id


def test_sessions_time_out_and_end_when_disabled(engine: Engine, user_id: str) -> None:
    t0 = utcnow()
    with session_scope(engine) as s:
        user = s.get(User, user_id)
        assert user is not None
        idle = start_session(s, user, now=t0).token
        busy = start_session(s, user, now=t0).token
        other = start_session(s, user, now=t0).token
    with session_scope(engine) as s:
        # a session used every 20 minutes stays alive ... until the absolute limit
        for minutes in range(20, int(ABSOLUTE_TIMEOUT.total_seconds() // 60), 20):
            assert resume_session(s, busy, now=t0 + dt.timedelta(minutes=minutes)) is not None
        assert resume_session(s, busy, now=t0 + ABSOLUTE_TIMEOUT + dt.timedelta(minutes=1)) is None
        assert resume_session(s, idle, now=t0 + IDLE_TIMEOUT + dt.timedelta(seconds=1)) is None
        assert resume_session(s, other, now=t0 + dt.timedelta(minutes=1)) is not None
        set_active(s, user_id, False)
        assert resume_session(s, other, now=t0 + dt.timedelta(minutes=2)) is None
        assert resume_session(s, "made-up-token") is None


def test_logout_ends_the_session(engine: Engine, user_id: str) -> None:
    with session_scope(engine) as s:
        user = s.get(User, user_id)
        assert user is not None
        token = start_session(s, user).token
        end_session(s, token)
        assert resume_session(s, token) is None


def test_totp_second_factor(engine: Engine, user_id: str) -> None:
    with session_scope(engine) as s:
        user = s.get(User, user_id)
        assert user is not None
        assert not check_totp(user, "123456")  # not enrolled
        uri = enrol_totp(s, user)
        assert uri.startswith("otpauth://totp/")
        assert user.totp_secret is not None
        code = pyotp.TOTP(user.totp_secret).now()
        assert check_totp(user, code)
        assert not check_totp(user, "000000" if code != "000000" else "111111")


def test_api_tokens_hashed_revocable_and_die_with_the_user(engine: Engine, user_id: str) -> None:
    with session_scope(engine) as s:
        user = s.get(User, user_id)
        assert user is not None
        t1 = create_api_token(s, user, "TH node pull")
        t2 = create_api_token(s, user, "notebook", expires_at=utcnow() - dt.timedelta(seconds=1))
        stored = list(s.scalars(select(ApiToken.token_hash)))
        assert t1 not in stored and len(stored[0]) == 64
        got = user_for_api_token(s, t1)
        assert got is not None and got.id == user_id
        assert user_for_api_token(s, t2) is None  # expired
        token_id = s.scalar(select(ApiToken.id).where(ApiToken.name == "TH node pull"))
        assert token_id is not None
        revoke_api_token(s, token_id)
        assert user_for_api_token(s, t1) is None
        t3 = create_api_token(s, user, "again")
        set_active(s, user_id, False)
        assert user_for_api_token(s, t3) is None
        assert s.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))) == 0

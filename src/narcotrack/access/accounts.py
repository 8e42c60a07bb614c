"""Logins, server-side sessions, lock-out, second factor and API tokens.

Rules (OWASP ASVS level 2 and the CJIS Security Policy's access controls, as the web issue asks):
5 failed logins in 15 minutes lock the account until an admin releases it; sessions end after 30
minutes idle or 12 hours in all; disabling a user ends their sessions at once; session and API tokens
are random and only their SHA-256 hashes are stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import pyotp
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.passwords import hash_password, password_problem, verify_password
from narcotrack.access.policy import Principal, is_admin, role_rules
from narcotrack.domain.ids import uuid7
from narcotrack.domain.models import UserIn
from narcotrack.errors import Conflict, InvalidInput, LoginFailed, NotFound
from narcotrack.store.repo import create_user
from narcotrack.store.schema import ApiToken, LoginAttempt, Organisation, User, UserSession, utcnow

MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
IDLE_TIMEOUT = dt.timedelta(minutes=30)
# How stale "last seen" / "last used" may get before it is written again. Writing it on every request
# would make every read a write (on SQLite, holding the one write lock until the request ends).
TOUCH_EVERY = dt.timedelta(minutes=1)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=12)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)  # SQLite returns naive UTC


def authenticate(session: Session, username: str, password: str, *, address: str | None = None,
                 now: dt.datetime | None = None) -> User:
    """The user, if the password is right and the account is active and not locked; else LoginFailed."""
    now = now or utcnow()
    user = session.scalar(select(User).where(User.username == username))
    ok = (user is not None and user.active and user.locked_at is None
          and verify_password(user.password_hash, password))
    session.add(LoginAttempt(username=username, at=now, address=address, success=ok))
    conn = session.connection()
    if ok and user is not None:
        record_event(conn, "login", user_id=user.id, org_id=user.org_id, address=address)
        return user
    reason = "unknown user" if user is None else "disabled" if not user.active else \
        "locked" if user.locked_at else "wrong password"
    record_event(conn, "login_failed", user_id=user.id if user else None, org_id=user.org_id if user else None,
                 address=address, outcome="denied", detail={"username": username, "reason": reason})
    if user is not None and user.locked_at is None:
        failures = session.scalar(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.username == username, LoginAttempt.success.is_(False),
            LoginAttempt.at > now - FAILURE_WINDOW))
        if (failures or 0) >= MAX_FAILURES:
            user.locked_at = now
            record_event(conn, "account_locked", user_id=user.id, org_id=user.org_id, address=address,
                         detail={"failures": failures})
    # The failure, and any lock, must be kept although the caller's unit of work fails: commit it now.
    session.commit()
    raise LoginFailed("wrong user name or password, or the account is locked or disabled")


def check_totp(user: User, code: str, *, now: dt.datetime | None = None) -> bool:
    if not user.totp_secret:
        return False
    return bool(pyotp.TOTP(user.totp_secret).verify(code.strip(), for_time=now, valid_window=1))


def enrol_totp(session: Session, user: User) -> str:
    """Give the user a new TOTP secret; returns the otpauth:// URI to show as a QR code once."""
    user.totp_secret = pyotp.random_base32()
    session.flush()
    return str(pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name="narcotrack"))


@dataclass(frozen=True)
class StartedSession:
    token: str
    csrf_token: str


def start_session(session: Session, user: User, *, address: str | None = None,
                  second_factor_ok: bool = False, now: dt.datetime | None = None) -> StartedSession:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = now or utcnow()
    session.add(UserSession(token_hash=_hash(token), user_id=user.id, created_at=now, last_seen_at=now,
                            second_factor_ok=second_factor_ok, csrf_token=csrf, address=address))
    session.flush()
    return StartedSession(token, csrf)


def resume_session(session: Session, token: str, *, now: dt.datetime | None = None) -> tuple[UserSession, User] | None:
    """The live session and its user for a browser's token, or None (unknown, ended, timed out, disabled)."""
    now = now or utcnow()
    row = session.get(UserSession, _hash(token))
    if row is None or row.ended_at is not None:
        return None
    user = session.get(User, row.user_id)
    idle = now - _aware(row.last_seen_at) > IDLE_TIMEOUT
    too_old = now - _aware(row.created_at) > ABSOLUTE_TIMEOUT
    if user is None or not user.active or user.locked_at is not None or idle or too_old:
        row.ended_at = now
        session.flush()
        return None
    if now - _aware(row.last_seen_at) >= TOUCH_EVERY:
        row.last_seen_at = now
        session.flush()
    return row, user


def end_session(session: Session, token: str) -> None:
    row = session.get(UserSession, _hash(token))
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        session.flush()


def _user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


def active_user(session: Session, username: str) -> User:
    """The active account of that name: the one a command run "as" a user acts and is audited for."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise InvalidInput(f"no active user named {username!r}")
    return user


def set_active(session: Session, user_id: str, active: bool, *, by: User | None = None) -> None:
    """Enable or disable an account; disabling ends all its sessions and tokens at once."""
    user = _user(session, user_id)
    user.active = active
    if not active:
        now = utcnow()
        session.execute(update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
                        .values(ended_at=now))
        session.execute(update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                        .values(revoked_at=now))
    record_event(session.connection(), "user_enabled" if active else "user_disabled",
                 user_id=by.id if by else None, org_id=by.org_id if by else None, record_type="user",
                 record_id=user_id)
    session.flush()


def release(session: Session, user_id: str, *, by: User | None = None) -> None:
    """Unlock an account locked by failed logins (an admin's decision)."""
    user = _user(session, user_id)
    user.locked_at = None
    record_event(session.connection(), "account_released", user_id=by.id if by else None,
                 org_id=by.org_id if by else None, record_type="user", record_id=user_id)
    session.flush()


def change_password(session: Session, user: User, new_password: str) -> None:
    problem = password_problem(new_password, user.username)
    if problem:
        raise InvalidInput(problem)
    user.password_hash = hash_password(new_password)
    session.flush()


def create_api_token(session: Session, user: User, name: str, *, expires_at: dt.datetime | None = None) -> str:
    """A new token for machine clients; the plain token is returned once and never stored."""
    token = "ntk_" + secrets.token_urlsafe(32)
    session.add(ApiToken(id=uuid7(), user_id=user.id, name=name, token_hash=_hash(token), expires_at=expires_at))
    record_event(session.connection(), "api_token_created", user_id=user.id, org_id=user.org_id,
                 record_type="user", record_id=user.id, detail={"name": name})
    session.flush()
    return token


def user_for_api_token(session: Session, token: str, *, now: dt.datetime | None = None) -> User | None:
    now = now or utcnow()
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    if row is None or row.revoked_at is not None or (row.expires_at and _aware(row.expires_at) <= now):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active or user.locked_at is not None:
        return None
    if row.last_used_at is None or now - _aware(row.last_used_at) >= TOUCH_EVERY:
        row.last_used_at = now
        session.flush()
    return user


def revoke_api_token(session: Session, token_id: str) -> None:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no API token with id {token_id}")
    row.revoked_at = utcnow()
    session.flush()


# --- Administration of accounts (the admin pages) and API-token self-service -----------------------------


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    """Naive UTC for display, whichever engine answered (PostgreSQL aware, SQLite naive UTC)."""
    return None if t is None else _aware(t).astimezone(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class UserListing:
    id: str
    username: str
    display_name: str
    org_code: str
    role: str
    active: bool
    locked_at: dt.datetime | None
    last_login: dt.datetime | None


def _last_logins() -> Any:
    return (select(LoginAttempt.username, func.max(LoginAttempt.at).label("last_login"))
            .where(LoginAttempt.success.is_(True)).group_by(LoginAttempt.username).subquery())


def list_users(session: Session) -> list[UserListing]:
    """Every account with its organisation code and last successful login, in one query."""
    last = _last_logins()
    rows = session.execute(
        select(User.id, User.username, User.display_name, Organisation.code, User.role, User.active, User.locked_at,
               last.c.last_login)
        .join(Organisation, Organisation.id == User.org_id)
        .outerjoin(last, last.c.username == User.username)
        .order_by(User.username))
    return [UserListing(i, name, shown, code, role, bool(active), _utc(locked), _utc(login))
            for i, name, shown, code, role, active, locked, login in rows]


def organisation_choices(session: Session) -> list[tuple[str, str]]:
    """(code, English name) of every organisation, for the create-user form."""
    return [(c, n) for c, n in session.execute(select(Organisation.code, Organisation.name_en)
                                               .order_by(Organisation.code))]


def create_account(session: Session, data: UserIn, *, by: User, address: str | None = None) -> User:
    """An admin creates an account (password rules apply); audited as ``user_created``."""
    user = create_user(session, data)
    record_event(session.connection(), "user_created", user_id=by.id, org_id=by.org_id, record_type="user",
                 record_id=user.id, address=address,
                 detail={"username": user.username, "org": data.org, "role": user.role})
    session.flush()
    return user


def check_not_self(by: User, user_id: str) -> None:
    """Admins may not disable or demote themselves: it could leave a store without an administrator."""
    if by.id == user_id:
        raise Conflict("you cannot do this to your own account; ask another administrator")


def change_role(session: Session, user_id: str, role: str, *, by: User, address: str | None = None) -> bool:
    """Give an account another role (not one's own); audited as ``user_role_changed``. False if unchanged."""
    if role not in role_rules():
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(role_rules())}")
    check_not_self(by, user_id)
    user = _user(session, user_id)
    if user.role == role:
        return False
    old, user.role = user.role, role
    record_event(session.connection(), "user_role_changed", user_id=by.id, org_id=by.org_id, record_type="user",
                 record_id=user_id, address=address, detail={"from": old, "to": role})
    session.flush()
    return True


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    created_at: dt.datetime | None
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    status: str  # active | expired | revoked


def api_tokens_of(session: Session, user_id: str, *, now: dt.datetime | None = None) -> list[TokenInfo]:
    """A user's API tokens, newest first (names and dates only: the tokens themselves are never stored)."""
    now = now or utcnow()
    out = []
    for t in session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                             .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())):
        status = "revoked" if t.revoked_at else \
            "expired" if t.expires_at and _aware(t.expires_at) <= now else "active"
        out.append(TokenInfo(t.id, t.name, _utc(t.created_at), _utc(t.last_used_at), _utc(t.expires_at),
                             _utc(t.revoked_at), status))
    return out


def account_overview(session: Session, user_id: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the account pages show: the user, organisation, last login, sessions and API tokens."""
    now = now or utcnow()
    user = _user(session, user_id)
    org = session.get(Organisation, user.org_id)
    sessions = session.execute(select(
        func.count(),
        func.count().filter(UserSession.ended_at.is_(None), UserSession.last_seen_at > now - IDLE_TIMEOUT,
                            UserSession.created_at > now - ABSOLUTE_TIMEOUT))
        .where(UserSession.user_id == user_id)).one()
    last_login = session.scalar(select(func.max(LoginAttempt.at)).where(
        LoginAttempt.username == user.username, LoginAttempt.success.is_(True)))
    return {"user": user, "org_code": org.code if org else "", "org_name": org.name_en if org else "",
            "locked_at": _utc(user.locked_at), "last_login": _utc(last_login), "sessions_total": sessions[0],
            "sessions_open": sessions[1], "tokens": api_tokens_of(session, user_id, now=now)}


def revoke_token(session: Session, p: Principal, by: User, token_id: str, *, address: str | None = None) -> str:
    """Revoke one's own API token (an admin: anyone's); audited. Returns the owner's id.

    Someone else's token answers NotFound, as if it did not exist, so token ids do not leak.
    """
    row = session.get(ApiToken, token_id)
    if row is not None and row.user_id != by.id and not is_admin(p):
        row = None
    if row is None:
        raise NotFound(f"no API token with id {token_id}")
    if row.revoked_at is None:
        revoke_api_token(session, token_id)
        record_event(session.connection(), "api_token_revoked", user_id=by.id, org_id=by.org_id,
                     record_type="user", record_id=row.user_id, address=address,
                     detail={"token_id": token_id, "name": row.name})
    return row.user_id

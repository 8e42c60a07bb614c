"""Password hashing with argon2id (OWASP's first choice for password storage)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


MIN_LENGTH = 8


@cache
def common_passwords() -> frozenset[str]:
    text = (resources.files("narcotrack.access") / "common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def password_problem(password: str, username: str = "") -> str | None:
    """Why a new password is refused (OWASP ASVS 2.1: length and known-breached lists), or None."""
    if len(password) < MIN_LENGTH:
        return f"the password needs at least {MIN_LENGTH} characters"
    if password.casefold() in common_passwords():
        return "the password is one of the most common passwords; choose another"
    if username and username.casefold() in password.casefold():
        return "the password must not contain the user name"
    return None

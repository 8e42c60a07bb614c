"""Credentials this node holds for its partners' servers, sealed at rest.

A partner's API token opens that partner's data to whoever holds it, so a copy of this node's database
(a backup, a dump handed to a contractor) must not carry it readable. Tokens are sealed with Fernet
(AES-128-CBC with HMAC-SHA256, from ``cryptography``) under the node's credential key, which lives
outside the database (``NARCOTRACK_CREDENTIAL_KEY`` or ``credential.key`` in the data folder).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from narcotrack.errors import ConfigError

PREFIX = "fernet:"


def seal(secret: str, key: bytes) -> str:
    """The sealed form stored in the database; an empty secret stays empty (no credential)."""
    if not secret:
        return ""
    return PREFIX + _fernet(key).encrypt(secret.encode("utf-8")).decode("ascii")


def unseal(stored: str, key: bytes, *, what: str) -> str:
    """The secret of a sealed value. A value stored before sealing existed is returned as it is."""
    if not stored.startswith(PREFIX):
        return stored
    try:
        return _fernet(key).decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise ConfigError(f"the stored credential of {what} was sealed under another credential key than this "
                          "node's (NARCOTRACK_CREDENTIAL_KEY or credential.key in the data folder); restore "
                          "that key, or add the partner again with its credential") from None


def _fernet(key: bytes) -> Fernet:
    try:
        return Fernet(key)
    except ValueError:
        raise ConfigError("the credential key is not a Fernet key (32 bytes, urlsafe base64): set "
                          "NARCOTRACK_CREDENTIAL_KEY to one, e.g. from `python -c \"from cryptography.fernet "
                          "import Fernet; print(Fernet.generate_key().decode())\"`") from None

"""Settings, read from the environment once per call site that needs them (no module-level state)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")


class Settings(BaseSettings):
    """Where the store lives and how the server runs; every command honours the same variables."""

    model_config = SettingsConfigDict(env_prefix="NARCOTRACK_", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Roles that must pass a TOTP second factor at login (comma-separated). `serve --demo` relaxes it.
    totp_roles: str = "admin"
    # Send session cookies only over HTTPS; switch off only behind plain-HTTP loopback (tests, demo).
    secure_cookies: bool = False
    # Rate limits (sliding one-minute window): login POSTs per client address, exports per user; 0 = off.
    login_rate_per_minute: int = 10
    export_rate_per_minute: int = 10

    # Key of the pseudonyms that partners see instead of identities. Set it on servers (and keep it:
    # changing it changes every pseudonym); without it a random key is kept in the data folder.
    pseudonym_key: str | None = None

    def pseudonym_key_bytes(self) -> bytes:
        if self.pseudonym_key:
            return self.pseudonym_key.encode()
        path = self.data_dir / "pseudonym.key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip().encode()

    # Key that seals the credentials this node holds for its partners' servers (a Fernet key, urlsafe
    # base64 of 32 bytes). Set it on servers and keep it apart from database backups; without it a random
    # key is kept in the data folder. Losing it means adding each partner again.
    credential_key: str | None = None

    def credential_key_bytes(self) -> bytes:
        if self.credential_key:
            return self.credential_key.encode()
        path = self.data_dir / "credential.key"
        if not path.exists():
            from cryptography.fernet import Fernet

            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_bytes(Fernet.generate_key())
        return path.read_bytes().strip()

    def totp_role_set(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.totp_roles.split(",") if r.strip())

    def resolved_database_url(self) -> str:
        """The explicit URL, else a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'narcotrack.sqlite').resolve()}"


def get_settings() -> Settings:
    return Settings()

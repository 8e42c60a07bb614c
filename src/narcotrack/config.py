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

    def totp_role_set(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.totp_roles.split(",") if r.strip())

    def resolved_database_url(self) -> str:
        """The explicit URL, else a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'narcotrack.sqlite').resolve()}"


def get_settings() -> Settings:
    return Settings()

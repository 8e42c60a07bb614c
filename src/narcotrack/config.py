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

    def resolved_database_url(self) -> str:
        """The explicit URL, else a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'narcotrack.sqlite').resolve()}"


def get_settings() -> Settings:
    return Settings()

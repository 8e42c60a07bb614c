"""A live server and a real headless Chromium for browser-facing tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.web.helpers import serve

CHROMIUM = os.environ.get("NARCOTRACK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live_server(sqlite_engine: Engine) -> Iterator[tuple[str, Engine]]:
    """narcotrack served by uvicorn on a free loopback port, in a thread of this process."""
    with serve(sqlite_engine) as address:
        yield address, sqlite_engine


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright; skipped (or failed under CI) when it is not installed."""
    if not shutil.which(CHROMIUM):
        reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("NARCOTRACK_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()

"""Log a test client in the way a browser does: fetch the form, post it with its CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from narcotrack.domain.models import UserIn
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_user

PASSWORD = "tonle-sap-2026"


def make_user(engine: Engine, username: str, org: str, role: str) -> None:
    with session_scope(engine) as s:
        create_user(s, UserIn(username=username, org=org, role=role, password=PASSWORD))


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD, totp: str = "") -> None:
    form = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password, "totp": totp,
                                    "csrf_token": csrf_of(form.text), "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def csrf_header(client: TestClient) -> dict[str, str]:
    """The X-CSRF-Token header a page's htmx requests carry, for API calls made with a session cookie."""
    m = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/").text)
    assert m, "no CSRF token on the home page"
    return {"x-csrf-token": m.group(1)}


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run inside the block (for N+1 guards)."""
    statements: list[str] = []

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


@contextmanager
def serve(engine: Engine) -> Iterator[str]:
    """narcotrack on ``engine``, served by uvicorn on a free loopback port in a thread; yields its address."""
    import socket
    import threading
    import time

    import uvicorn

    from narcotrack.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

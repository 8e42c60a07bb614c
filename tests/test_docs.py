"""Every CLI command and every HTTP route is documented (the test fails when one is added without docs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from fastapi.routing import APIRoute

from narcotrack.cli import app as cli_app
from narcotrack.store.db import make_engine
from narcotrack.web.app import create_app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _commands(app: typer.Typer, prefix: str = "") -> list[str]:
    names = []
    for cmd in app.registered_commands:
        name = cmd.name or (cmd.callback.__name__.replace("_", "-").rstrip("-") if cmd.callback else "")
        names.append(f"{prefix}{name}")
    for group in app.registered_groups:
        names.extend(_commands(group.typer_instance, f"{prefix}{group.name} "))
    return names


def test_cli_commands_found() -> None:
    assert {"init", "import", "template", "demo", "serve", "users create"} <= set(_commands(cli_app))


@pytest.mark.parametrize("command", _commands(cli_app))
def test_cli_command_is_documented(command: str) -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert re.search(rf"^## `narcotrack {re.escape(command)}`", text, re.M), f"docs/cli.md lacks {command}"


@pytest.mark.parametrize("command", _commands(cli_app))
def test_cli_command_has_help(command: str) -> None:
    from typer.testing import CliRunner

    r = CliRunner().invoke(cli_app, [*command.split(), "--help"])
    assert r.exit_code == 0
    assert len(r.output.split("Usage:", 1)[1]) > 80


def _routes() -> list[tuple[str, str]]:
    """Every route: those in the OpenAPI description (FastAPI nests included routers, so app.routes alone
    does not list them) and those deliberately left out of it."""
    app = create_app(make_engine("sqlite://"))
    out = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    for route in app.routes:
        if isinstance(route, APIRoute):
            out.update((method, route.path) for method in route.methods - {"HEAD"})
    return sorted(out)


def test_routes_found() -> None:
    assert len(_routes()) > 60


def _docs_text() -> str:
    """docs/web.md and the feature pages it links to: a route is documented with the feature it serves."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


@pytest.mark.parametrize(("method", "path"), _routes())
def test_route_is_documented(method: str, path: str) -> None:
    assert f"`{method} {path}`" in _docs_text(), f"no page in docs/ documents {method} {path}"

"""Rate limits: the sliding-window limiter itself (fake clock), and its use on login and export."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from narcotrack.config import Settings
from narcotrack.web import ratelimit
from narcotrack.web.app import create_app
from narcotrack.web.ratelimit import Limit, RateLimiter
from tests.web.helpers import PASSWORD, csrf_of, login, make_user


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"login": Limit(3, 60)}, clock=clock)
    for t in (0, 10, 20):
        clock.now = 1000 + t
        assert limiter.hit("login", "10.0.0.1") == 0
    clock.now = 1030
    assert limiter.hit("login", "10.0.0.1") == pytest.approx(30)  # the hit at t=0 leaves the window at t=60
    assert limiter.hit("login", "10.0.0.2") == 0  # other keys are counted apart
    clock.now = 1060
    assert limiter.hit("login", "10.0.0.1") == 0  # one slot free: the window slides, it does not reset
    assert limiter.hit("login", "10.0.0.1") == pytest.approx(10)
    clock.now = 1200
    assert [limiter.hit("login", "10.0.0.1") for _ in range(4)] == [0, 0, 0, pytest.approx(60)]


def test_refused_hits_do_not_count_and_zero_switches_off() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"export": Limit(2, 60), "login": Limit(0)}, clock=clock)
    assert [limiter.hit("export", "u") for _ in range(5)][:2] == [0, 0]
    clock.now += 60
    assert limiter.hit("export", "u") == 0  # the three refused hits did not extend the wait
    assert all(limiter.hit("login", "a") == 0 for _ in range(100))


def test_stale_keys_are_swept() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"login": Limit(5, 60)}, clock=clock)
    for i in range(ratelimit.SWEEP_EVERY - 1):
        limiter.hit("login", f"10.0.{i // 256}.{i % 256}")
    assert limiter.tracked_keys() == ratelimit.SWEEP_EVERY - 1
    clock.now += 61
    limiter.hit("login", "192.168.1.1")
    assert limiter.tracked_keys() == 1


def test_thread_safe() -> None:
    limiter = RateLimiter({"export": Limit(50, 60)}, clock=FakeClock())
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(100):
            ok = limiter.hit("export", "u") == 0
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 800 and sum(allowed) == 50


def _app(engine: Engine, clock: FakeClock, **settings: int) -> TestClient:
    app = create_app(engine, settings=Settings(totp_roles="", **settings))
    app.state.rate_limiter = ratelimit.limiter_for(Settings(**settings), clock=clock)
    return TestClient(app)


def _login_post(c: TestClient, password: str = PASSWORD) -> int:
    form = c.get("/login")
    r = c.post("/login", data={"username": "dara", "password": password, "csrf_token": csrf_of(form.text)},
               follow_redirects=False)
    return r.status_code


def test_eleventh_login_in_a_minute_answers_429(engine: Engine) -> None:
    make_user(engine, "dara", "KH-ADP", "analyst")
    clock = FakeClock()
    c = _app(engine, clock)
    assert [_login_post(c) for _ in range(10)] == [303] * 10
    clock.now += 30
    form = c.get("/login")
    r = c.post("/login", data={"username": "dara", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
               follow_redirects=False)
    assert r.status_code == 429 and r.headers["retry-after"] == "30"
    assert "too many login attempts" in r.text and "nt_session" not in r.headers.get("set-cookie", "")
    clock.now += 31
    assert _login_post(c) == 303


def test_login_limit_is_configurable_and_counts_failures(engine: Engine) -> None:
    make_user(engine, "dara", "KH-ADP", "analyst")
    c = _app(engine, FakeClock(), login_rate_per_minute=3)
    assert [_login_post(c, "not-the-password") for _ in range(4)] == [401, 401, 401, 429]


def test_eleventh_export_in_a_minute_answers_429(engine: Engine) -> None:
    make_user(engine, "ana", "KH-NACD", "admin")
    make_user(engine, "dara", "KH-ADP", "analyst")
    clock = FakeClock()
    c = _app(engine, clock)
    login(c, "ana")
    codes = [c.get("/api/v1/incidents/export.csv").status_code for _ in range(6)]
    codes += [c.get("/admin/audit/export.csv").status_code for _ in range(4)]
    assert codes == [200] * 10
    r = c.get("/api/v1/incidents/export.csv")
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    assert "too many exports" in r.json()["error"]
    assert c.get("/admin/audit/export.csv").status_code == 429  # one budget for every export
    other = _app(engine, clock)
    other.app.state.rate_limiter = c.app.state.rate_limiter
    login(other, "dara")
    assert other.get("/api/v1/incidents/export.csv").status_code == 200  # counted per user
    clock.now += 60
    assert c.get("/api/v1/incidents/export.csv").status_code == 200

"""The package's one exception tree.

Every error a user can cause derives from :class:`NarcotrackError`; the web layer and the CLI each map
these to responses in one place, so no traceback reaches a user.
"""

from __future__ import annotations


class NarcotrackError(Exception):
    """Base of every error narcotrack raises on purpose."""

    exit_code = 1
    http_status = 500


class ConfigError(NarcotrackError):
    """A setting is missing or malformed."""

    exit_code = 2
    http_status = 500


class InvalidInput(NarcotrackError):
    """Input does not follow the domain's rules (a bad row, an unknown code)."""

    exit_code = 2
    http_status = 422


class NotFound(NarcotrackError):
    """A record that was asked for does not exist (or the caller may not know it exists)."""

    exit_code = 3
    http_status = 404


class Conflict(NarcotrackError):
    """The change collides with what is stored (a duplicate username, a stale version)."""

    exit_code = 4
    http_status = 409


class ImportRejected(InvalidInput):
    """A file had rows that failed validation, so nothing was imported."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class StoreError(NarcotrackError):
    """The database could not be reached or is not at the expected schema version."""

    exit_code = 5
    http_status = 503


class IntegrityViolation(NarcotrackError):
    """Stored data failed an integrity check (a broken audit chain)."""

    exit_code = 6
    http_status = 500


class NotAuthenticated(NarcotrackError):
    """No valid session or API token: log in first."""

    exit_code = 7
    http_status = 401


class LoginFailed(NotAuthenticated):
    """Wrong name or password, a locked or a disabled account: one message for all, on purpose."""


class Forbidden(NarcotrackError):
    """Logged in, but the sharing policy or the role does not allow this."""

    exit_code = 8
    http_status = 403


class RateLimited(NarcotrackError):
    """Too many requests of one kind in a short time (logins per address, exports per user)."""

    exit_code = 9
    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

"""The one error family of Podium.

Domain code raises these; ``podium.api.errors`` maps them to HTTP status codes and
``podium.cli`` maps them to exit codes, each in one place.
"""

from __future__ import annotations


class PodiumError(Exception):
    """Base of every error Podium reports to a user; ``str(err)`` is the reason."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Invalid(PodiumError):
    """The input is malformed or breaks a rule (HTTP 422)."""

    status_code = 422


class NotFound(PodiumError):
    """The named thing does not exist (HTTP 404)."""

    status_code = 404


class Conflict(PodiumError):
    """The request clashes with the current state: a duplicate, a held lock (HTTP 409)."""

    status_code = 409


class Unauthorized(PodiumError):
    """No token, or a token Podium does not know (HTTP 401)."""

    status_code = 401


class Forbidden(PodiumError):
    """The caller's team may not do this (HTTP 403)."""

    status_code = 403


class TooLarge(Invalid):
    """An upload is over a configured limit (HTTP 413)."""

    status_code = 413

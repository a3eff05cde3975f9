"""The small exception hierarchy every layer raises; the API maps it to HTTP in one place."""

from __future__ import annotations


class TrueupError(Exception):
    """Base of every error trueup raises on purpose."""


class InvalidInput(TrueupError):
    """The caller sent something trueup cannot accept; the message names the problem."""


class NotFound(TrueupError):
    """An id that does not exist."""


class Conflict(TrueupError):
    """The request clashes with stored state (e.g. an organization already mapped elsewhere)."""


class LostRace(Conflict):
    """Another writer changed what this write was made over, between its read and its write (409)."""


class PreconditionFailed(Conflict):
    """A write made with If-Match on a version that is no longer the stored one (412): nothing changed."""


class UpstreamError(TrueupError):
    """A vendor API failed. `retryable` says whether trying again later may help."""

    def __init__(self, source: str, message: str, *, status: int | None = None, retryable: bool) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.status = status
        self.retryable = retryable
        self.detail = message


class Unprocessable(TrueupError):
    """Well-formed, but not something trueup can do as asked (422): e.g. an Idempotency-Key reused with
    another body."""

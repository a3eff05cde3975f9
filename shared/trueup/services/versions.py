"""Versioned writes: mappings, settings, decisions and the rest of a review are each changed over the
version that was read. With If-Match (the ETag a GET gave), a stale version is 412 and nothing is
written; without, the loser of two writes racing is 409 (the store's conditional write decides)."""

from __future__ import annotations

from trueup.errors import Conflict, LostRace, PreconditionFailed


def check_version(if_match: int | None, version: int, what: str, read_again: str) -> None:
    """412 when If-Match names another version than the stored one (`*`: any stored version)."""
    if if_match is None or (if_match == -1 and version > 0):
        return
    if if_match != version:
        raise PreconditionFailed(
            f"{what} is at version {version}, not {if_match}: read it again ({read_again})"
        )


def lost_race(if_match: int | None, what: str) -> Conflict:
    """What a write that lost a race to another answers: 412 when it named a version, else 409."""
    message = f"{what} was changed by someone else meanwhile: read it again"
    return PreconditionFailed(message) if if_match is not None else LostRace(message)

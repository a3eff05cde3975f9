"""`Idempotency-Key` for the requests that create something (POST /snapshots, POST /syncs).

A client that sends the same key again (a double click, a retry after a timeout) gets the first
answer instead of a second snapshot or sync. The key is scoped to the caller and the route, and bound
to a hash of the body: the same key with another body is a 422, and a request still in progress under
that key a 409. Records live in the table (partition IDEMPOTENCY) for a day, then DynamoDB's TTL
removes them. Built on Powertools' Idempotency utility, loaded only when a request carries a key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from trueup.api.identity import Caller
from trueup.errors import Conflict, InvalidInput, Unprocessable
from trueup.store.idempotency_records import persistence_layer

HEADER = "idempotency-key"
KEY_PATTERN = r"^[!-~]{1,100}$"  # printable ASCII, no spaces: a UUID fits
EXPIRES_AFTER_SECONDS = 24 * 3600
_KEY = re.compile(KEY_PATTERN)


def once(
    headers: Mapping[str, str],
    caller: Caller,
    route: str,
    body: str | None,
    action: Callable[[], dict[str, Any]],
    context: Any,
) -> dict[str, Any]:
    """`action()`, or what it answered the first time this caller sent this key to this route.

    `context`: the Lambda context, whose remaining time bounds how long a record stays in progress."""
    key = next((v for k, v in headers.items() if k.lower() == HEADER), None)
    if key is None:
        return action()
    if not _KEY.match(key):
        raise InvalidInput(
            "Idempotency-Key must be 1 to 100 printable characters without spaces (a UUID fits)"
        )

    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    persistence = persistence_layer()
    settings = IdempotencyConfig(
        event_key_jmespath="[caller, route, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=EXPIRES_AFTER_SECONDS,
    )
    settings.register_lambda_context(context)

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=settings)
    def run(request: dict[str, Any]) -> dict[str, Any]:
        return action()

    try:
        answer: dict[str, Any] = run(
            request={"caller": caller.subject, "route": route, "key": key, "body": body or ""}
        )
    except IdempotencyValidationError:
        raise Unprocessable("this Idempotency-Key was already used with another body") from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict(
            "a request with this Idempotency-Key is still in progress; try again shortly"
        ) from None
    return answer

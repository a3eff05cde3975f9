"""Acting once per thing that happened, however often its event is delivered: EventBridge and
Scheduler deliver at least once, and a retried invocation runs its step again.

Built on Powertools' Idempotency (records in the table's IDEMPOTENCY partition): the first delivery
acts and its answer is kept; a later one gets that answer without acting; one arriving while the
first is still at work is told so (`InProgress`), and leaves the work to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trueup.errors import Conflict

KEPT_SECONDS = 7 * 24 * 3600  # a repeated event is recognised for a week


class InProgress(Conflict):
    """Another delivery of the same event is doing this step right now."""


def once(key: str, context: Any, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`action()`, or what it answered the first time for `key` (a step of a cycle, a notice).

    `context`: the Lambda context, whose remaining time bounds how long a record stays in progress
    (a function that dies mid-step leaves no record that blocks the next delivery for long)."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    from trueup.store.idempotency_records import persistence_layer

    settings = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=KEPT_SECONDS)
    settings.register_lambda_context(context)

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="step", persistence_store=persistence_layer(), config=settings
    )
    def run(step: dict[str, str]) -> dict[str, Any]:
        return action()

    try:
        answer: dict[str, Any] = run(step={"key": key})
    except IdempotencyAlreadyInProgressError:
        raise InProgress(f"{key} is being done by another delivery of the same event") from None
    return answer


def cycle_step_once(
    cycle_id: str, step: str, context: Any, action: Callable[[], dict[str, Any]], not_done: dict[str, Any]
) -> dict[str, Any]:
    """A cycle's step, once (`once`), logged; while another delivery is doing it, `not_done` with
    `in_progress` (that delivery finishes it)."""
    from trueup.observability import logger

    try:
        answer = once(f"cycle/{cycle_id}/{step}", context, action)
    except InProgress:
        logger.info("another delivery of this event is doing the cycle's %s", step)
        return {"cycle_id": cycle_id, **not_done, "in_progress": True}
    logger.info("cycle %s", step, extra=answer)
    return answer

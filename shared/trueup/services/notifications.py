"""Telling people: a message in plain words on the SNS topic they subscribe to (an e-mail address,
a chat hook), once per thing that happened however often its event is delivered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trueup import aws
from trueup.config import config
from trueup.errors import TrueupError
from trueup.events import SyncFailed, SyncHeld

SOURCE_NAMES = {"pax8": "Pax8", "rmm": "RMM"}
KEPT_SECONDS = 7 * 24 * 3600  # a repeated event is recognised for a week
SUBJECT_LIMIT = 100  # SNS refuses a longer subject


@dataclass(frozen=True)
class Notice:
    key: str  # what happened, once: a second delivery of the same event finds it
    subject: str
    text: str


def sync_problem(event: SyncFailed | SyncHeld, page_url: str | None) -> Notice:
    """What to tell about a sync that failed or was held: what happened, what it means, what to do."""
    name = SOURCE_NAMES.get(event.source, event.source)
    where = f"Open trueup: {page_url}" if page_url else "Open trueup's Reconciliation page."
    if isinstance(event, SyncHeld):
        return Notice(
            key=f"sync-held/{event.run_id}/{event.source}",
            subject=f"trueup: the {name} sync was held",
            text=(
                f"The {name} sync of run {event.run_id} was held: {event.reason}.\n\n"
                "Its data looks too short to use, so the data synced before stays in use. Check the "
                f"vendor, then, as an admin, use the new data or discard it.\n\n{where}"
            ),
        )
    return Notice(
        key=f"sync-failed/{event.run_id}/{event.source}",
        subject=f"trueup: the {name} sync failed",
        text=(
            f"The {name} sync of run {event.run_id} failed: {event.error}\n\n"
            "The data synced before stays in use; snapshots use it until a sync succeeds.\n\n"
            f"{where}"
        ),
    )


def send_once(notice: Notice, context: Any, publish: Callable[[Notice], str] | None = None) -> str:
    """Publish `notice` unless it was already: the message id (the first one's, for a repeat)."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

    from trueup.store.idempotency_records import persistence_layer

    settings = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=KEPT_SECONDS)
    settings.register_lambda_context(context)
    send = publish or _publish

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="notice", persistence_store=persistence_layer(), config=settings
    )
    def once(notice: dict[str, str]) -> dict[str, str]:
        return {"message_id": send(Notice(**notice))}

    answer = once(notice={"key": notice.key, "subject": notice.subject, "text": notice.text})
    message_id: str = answer["message_id"]
    return message_id


def _publish(notice: Notice) -> str:
    topic = config().topic_arn
    if not topic:
        raise TrueupError(
            "TRUEUP_TOPIC_ARN is not set: nowhere to send notifications (template.yaml sets it)"
        )
    answer = aws.client("sns").publish(
        TopicArn=topic, Subject=notice.subject[:SUBJECT_LIMIT], Message=notice.text
    )
    message_id: str = answer["MessageId"]
    return message_id

"""NotifyFunction: tells people, on the SNS topic, when a sync fails ("Sync Failed") or is held
("Sync Held"): once per sync, however often EventBridge delivers the event."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.config import config
from trueup.events import SyncFailed, SyncHeld, received
from trueup.observability import logger
from trueup.services.notifications import send_once, sync_problem


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    kind = (
        SyncHeld
        if isinstance(event, dict) and event.get("detail-type") == SyncHeld.detail_type
        else SyncFailed
    )
    what = received(event, kind)
    logger.append_keys(run_id=what.run_id, source=what.source)
    notice = sync_problem(what, config().page_url)
    message_id = send_once(notice, context)
    logger.info("notified", extra={"subject": notice.subject, "message_id": message_id})
    return {"message_id": message_id, "subject": notice.subject}

"""NotifyFunction: tells people, on the SNS topic, once per thing however often its event arrives:
- a sync no monthly cycle waits on failed ("Sync Failed") or was held ("Sync Held");
- a monthly cycle ended: its exports are ready ("Exports Ready") or it stopped ("Cycle Stopped").
"""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup import events
from trueup.config import config
from trueup.observability import logger
from trueup.services.notifications import send_once, sync_problem, tell_cycle

CYCLE_ENDS = (events.ExportsReady.detail_type, events.CycleStopped.detail_type)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail_type = event.get("detail-type") if isinstance(event, dict) else None
    if detail_type in CYCLE_ENDS:
        ended: events.ExportsReady | events.CycleStopped = (
            events.received(event, events.ExportsReady)
            if detail_type == events.ExportsReady.detail_type
            else events.received(event, events.CycleStopped)
        )
        logger.append_keys(cycle_id=ended.cycle_id)
        told = tell_cycle(ended.cycle_id, context, datetime.now(UTC))
        logger.info("cycle told", extra=told)
        return told
    what: events.SyncHeld | events.SyncFailed = (
        events.received(event, events.SyncHeld)
        if detail_type == events.SyncHeld.detail_type
        else events.received(event, events.SyncFailed)
    )
    logger.append_keys(run_id=what.run_id, source=what.source)
    notice = sync_problem(what, config().page_url)
    message_id = send_once(notice, context)
    logger.info("notified", extra={"subject": notice.subject, "message_id": message_id})
    return {"message_id": message_id, "subject": notice.subject}

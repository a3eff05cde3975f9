"""CycleFunction: what the schedules start. The daily sync schedule ({"trigger": "daily-sync",
"scheduled_time": ...}) syncs every source, once per firing; the monthly cycle comes here too."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.observability import logger
from trueup.services.scheduled import start_daily_sync


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = event.get("trigger") if isinstance(event, dict) else None
    if trigger == "daily-sync":
        outcome = start_daily_sync(event.get("scheduled_time"), datetime.now(UTC))
        logger.info("daily sync", extra=outcome)
        return outcome
    keys = sorted(event) if isinstance(event, dict) else type(event).__name__
    raise ValueError(f'unrecognised event (keys: {keys}): expected {{"trigger": "daily-sync", ...}}')

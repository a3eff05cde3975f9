"""SuggestionsFunction: after a sync of either source ("Sync Completed"), or when the mapping view
finds none ("Suggestions Requested"), works out and stores the mapping suggestions for the current
data, so that the mapping view only reads them."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.events import SuggestionsRequested, SyncCompleted, received
from trueup.observability import logger
from trueup.services.suggestions import prepare_suggestions


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("detail-type") == SuggestionsRequested.detail_type:
        asked = received(event, SuggestionsRequested)
        logger.append_keys(pax8_generation=asked.pax8_generation, rmm_generation=asked.rmm_generation)
    else:
        completed = received(event, SyncCompleted)
        logger.append_keys(run_id=completed.run_id, source=completed.source)
    outcome = prepare_suggestions(datetime.now(UTC))
    logger.info("mapping suggestions", extra=outcome)
    return outcome

"""RmmSyncFunction: runs a rmm sync when a "Sync Requested" event for rmm arrives on the bus."""

from typing import Any

from aws_lambda_powertools.utilities.parser import envelopes, parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.events import SyncRequested
from trueup.observability import logger
from trueup.syncs import run_sync


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    request = parse(event=event, model=SyncRequested, envelope=envelopes.EventBridgeEnvelope)
    if request.source != "rmm":
        raise ValueError(f"this function syncs rmm, not {request.source}: check the rule's pattern")
    logger.append_keys(run_id=request.run_id, source=request.source)
    run_sync(request.run_id, "rmm")

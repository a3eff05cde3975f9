"""RmmSyncFunction: runs an RMM sync when a "Sync Requested" event for rmm arrives on the bus."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.events import SyncRequested, received
from trueup.observability import logger
from trueup.services.rmm_source import rmm_fetch
from trueup.services.syncs import run_sync


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    request = received(event, SyncRequested)
    if request.source != "rmm":
        raise ValueError(f"this function syncs rmm, not {request.source}: check the rule's pattern")
    logger.append_keys(run_id=request.run_id, source=request.source)
    run_sync(request.run_id, "rmm", rmm_fetch())

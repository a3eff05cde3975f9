"""RmmSyncFunction: syncs one RMM source when a "Sync Requested" event names it (every RMM in use
has its own event, its own secret and its own generation)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.config import config
from trueup.events import SyncRequested, received
from trueup.observability import logger
from trueup.services.rmm_source import rmm_fetch
from trueup.services.syncs import run_sync


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    request = received(event, SyncRequested)
    in_use = config().rmm_sources
    if request.source not in in_use:
        raise ValueError(
            f"this function syncs the RMM sources in use ({', '.join(in_use)}), not {request.source}: "
            "check the rule's pattern and RMM_SOURCES"
        )
    logger.append_keys(run_id=request.run_id, source=request.source)
    run_sync(request.run_id, request.source, rmm_fetch(request.source))

"""Pax8SyncFunction: runs a Pax8 sync when a "Sync Requested" event for pax8 arrives on the bus."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.events import SyncRequested, received
from trueup.observability import logger
from trueup.services.pax8_source import pax8_fetch
from trueup.services.syncs import run_sync


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    request = received(event, SyncRequested)
    if request.source != "pax8":
        raise ValueError(f"this function syncs pax8, not {request.source}: check the rule's pattern")
    logger.append_keys(run_id=request.run_id, source=request.source)
    run_sync(request.run_id, "pax8", pax8_fetch())

"""SnapshotFunction: /snapshots over HTTP, and a monthly cycle's snapshot ("Cycle Synced")."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.api.resolver import build_resolver, resolve
from trueup.api.routes import routers_of
from trueup.observability import logger

app = build_resolver(routers_of("snapshot"))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "requestContext" in event:
        return resolve(app, event, context)
    if isinstance(event, dict) and event.get("detail-type") == "Cycle Synced":
        from trueup import events
        from trueup.services.cycles import take_cycle_snapshot
        from trueup.services.once import cycle_step_once

        cycle_id = events.received(event, events.CycleSynced).cycle_id
        logger.append_keys(cycle_id=cycle_id)
        return cycle_step_once(
            cycle_id,
            "snapshot",
            context,
            lambda: take_cycle_snapshot(cycle_id, datetime.now(UTC)),
            not_done={"taken": False},
        )
    keys = sorted(event) if isinstance(event, dict) else type(event).__name__
    raise ValueError(f'unrecognised event (keys: {keys}): expected an HTTP request or "Cycle Synced"')

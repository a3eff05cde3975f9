"""SnapshotFunction: /snapshots over HTTP, and the monthly schedule ({"trigger": "schedule"})."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.api.resolver import build_resolver, resolve
from trueup.api.routes import routers_of
from trueup.observability import logger
from trueup.services.snapshots import take_snapshot

app = build_resolver(routers_of("snapshot"))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "requestContext" in event:
        return resolve(app, event, context)
    if event.get("trigger") == "schedule":
        snapshot = take_snapshot("schedule", datetime.now(UTC))
        logger.info("scheduled snapshot taken", extra={"snapshot_id": snapshot["id"]})
        return {"id": snapshot["id"], "coverages": [c["summary"] for c in snapshot["coverages"]]}
    raise ValueError(f"unrecognised event (keys: {sorted(event)}): expected an HTTP request or a schedule")

"""ExportFunction: CSV exports of snapshots, served by presigned S3 links; and a monthly cycle's
exports ("Snapshot Created" by a cycle): a CSV per coverage and one with every coverage."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.api.resolver import build_resolver, resolve
from trueup.api.routes import routers_of
from trueup.observability import logger

app = build_resolver(routers_of("export"))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "requestContext" in event:
        return resolve(app, event, context)
    if isinstance(event, dict) and event.get("detail-type") == "Snapshot Created":
        from trueup import events
        from trueup.services.cycles import write_cycle_exports
        from trueup.services.once import cycle_step_once

        created = events.received(event, events.SnapshotCreated)
        if created.cycle_id is None:  # the rule passes only a cycle's snapshots
            raise ValueError(f"snapshot {created.snapshot_id} was not taken by a cycle: nothing to export")
        cycle_id, snapshot_id = created.cycle_id, created.snapshot_id
        logger.append_keys(cycle_id=cycle_id, snapshot_id=snapshot_id)
        return cycle_step_once(
            cycle_id,
            "exports",
            context,
            lambda: write_cycle_exports(cycle_id, snapshot_id, datetime.now(UTC)),
            not_done={"written": False},
        )
    keys = sorted(event) if isinstance(event, dict) else type(event).__name__
    raise ValueError(f'unrecognised event (keys: {keys}): expected an HTTP request or "Snapshot Created"')

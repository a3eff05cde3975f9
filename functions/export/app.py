"""ExportFunction: CSV exports of snapshots, served by presigned S3 links."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.api.resolver import build_resolver, resolve
from trueup.api.routes import routers_of
from trueup.observability import logger

app = build_resolver(routers_of("export"))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)

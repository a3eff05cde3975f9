"""ApiFunction: the Reconciliation page, syncs, mappings, settings, /openapi.json (routes: template.yaml)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.api.resolver import build_resolver, resolve
from trueup.api.routes import routers_of
from trueup.observability import logger

app = build_resolver(routers_of("api"))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)

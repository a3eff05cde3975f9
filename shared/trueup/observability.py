"""The one place that creates Powertools' Logger and Metrics.

Metrics go out as CloudWatch embedded-metric-format lines in the function's log (no API call, no
extra permission), namespace `trueup`: records synced and sync duration per source, failed syncs,
snapshot rows per status, exports written. There is no Tracer: the X-Ray SDK would add about a
tenth of `import boto3` to every cold start, while the template's `Tracing: Active` already records
each invocation (its init, duration and errors) without it.
"""

from __future__ import annotations

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

__all__ = ["MetricUnit", "emit_metrics", "logger"]

NAMESPACE = "trueup"

logger = Logger(service="trueup")


def emit_metrics(values: dict[str, tuple[MetricUnit, float]], **dimensions: str) -> None:
    """Send these metrics now, with these dimensions, as one embedded-metric-format log line.

    Ephemeral on purpose: nothing is kept between invocations of a warm container, so a dimension
    (the source of a sync, the status of a row) can never leak into another invocation's metrics.
    """
    batch = EphemeralMetrics(namespace=NAMESPACE, service="trueup")
    for name, value in dimensions.items():
        batch.add_dimension(name=name, value=value)
    for name, (unit, amount) in values.items():
        batch.add_metric(name=name, unit=unit, value=amount)
    batch.flush_metrics()

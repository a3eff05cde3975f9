"""The one place that creates Powertools' Logger, Tracer and Metrics."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="trueup")
tracer = Tracer(service="trueup")
metrics = Metrics(namespace="trueup", service="trueup")

"""Where Powertools' Idempotency keeps its records: the table's IDEMPOTENCY partition (TTL removes
them). Used by the HTTP `Idempotency-Key` (trueup.api.idempotency) and by the functions that act
once per event however often it is delivered (trueup.services.notifications)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trueup import aws
from trueup.config import config

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

PARTITION = "IDEMPOTENCY"


def persistence_layer() -> DynamoDBPersistenceLayer:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(
        table_name=config().table,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=PARTITION,
        boto3_client=aws.client("dynamodb"),
    )

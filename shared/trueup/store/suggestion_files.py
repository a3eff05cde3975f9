"""Mapping suggestions worked out ahead, one gzipped JSON document per pair of current generations.

Comparing every unmapped organization with every company is the slow part of the mapping view (about
8 ms per organization at 10,000 companies), so it is done once after a sync, not while a person
waits. The document is keyed by the two generations it was worked out from, and the table says where it
is (`TrueupTable.suggestions_of`): it can never be applied to other data.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from botocore.exceptions import ClientError

from trueup import aws
from trueup.config import config
from trueup.domain.models import Suggestion
from trueup.observability import logger

FORMAT = 1


def suggestions_key(pax8_generation: str, rmm_generation: str) -> str:
    return f"suggestions/{pax8_generation}/{rmm_generation}.json.gz"


def put_suggestions(key: str, by_organization: dict[str, list[Suggestion]]) -> None:
    """Store each organization's suggestions (an empty list: worked out, none found)."""
    document = {
        "format": FORMAT,
        "organizations": {
            org: [[s.pax8_company_id, s.score] for s in found] for org, found in by_organization.items()
        },
    }
    aws.client("s3").put_object(
        Bucket=config().bucket,
        Key=key,
        Body=gzip.compress(json.dumps(document, separators=(",", ":")).encode(), 6),
        ContentType="application/json",
        ContentEncoding="gzip",
    )


def read_suggestions(key: str) -> dict[str, list[Suggestion]] | None:
    """The stored suggestions by organization id; None when they are gone (expired) or unreadable:
    they are worked out again, never half-used."""
    try:
        body = aws.client("s3").get_object(Bucket=config().bucket, Key=key)["Body"].read()
        document: Any = json.loads(gzip.decompress(body))
    except ClientError as exc:
        logger.warning("stored suggestions %s could not be read (%s); working them out again", key, exc)
        return None
    except (OSError, EOFError, ValueError) as exc:
        logger.warning("stored suggestions %s are unreadable (%s); working them out again", key, exc)
        return None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        logger.warning("stored suggestions %s are of an unknown format; working them out again", key)
        return None
    return {
        org: [
            Suggestion.model_construct(pax8_company_id=company, rmm_organization_id=org, score=score)
            for company, score in found
        ]
        for org, found in document["organizations"].items()
    }

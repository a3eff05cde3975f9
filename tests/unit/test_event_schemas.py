"""The events' JSON Schemas (shared/events/): what the models say, and what they accept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest

from infra.event_schemas import SCHEMAS, rendered
from trueup.events import ALL_EVENTS, Event, schema_file_name


def test_every_event_has_its_schema_file_as_the_models_say() -> None:
    assert {p.name for p in SCHEMAS.glob("*.json")} == set(rendered()), "run `make event-schemas`"
    for name, text in rendered().items():
        assert (SCHEMAS / name).read_text() == text, f"{name} is stale: run `make event-schemas`"
    # Every Event subclass is published, so each must be listed (and so have a schema).
    assert set(Event.__subclasses__()) == set(ALL_EVENTS)


EXAMPLES: dict[str, dict[str, object]] = {
    "Sync Requested": {"run_id": "r1", "source": "pax8"},
    "Sync Completed": {
        "run_id": "r1",
        "source": "ninjaone",
        "generation": "g1",
        "synced_at": datetime(2026, 12, 1, 6, tzinfo=UTC).isoformat(),
        "records": 628,
        "skipped": 1,
    },
    "Sync Held": {
        "run_id": "r1",
        "source": "datto",
        "generation": "g1",
        "reason": "NinjaOne returned 240 devices",
    },
    "Sync Failed": {"run_id": "r1", "source": "pax8", "error": "HTTP 500 after 5 attempts"},
    "Suggestions Requested": {"pax8_generation": "g1", "rmm_generation": "g2"},
    "Cycle Synced": {"cycle_id": "20261201T060000Z-monthly"},
    "Cycle Stopped": {"cycle_id": "20261201T060000Z-monthly", "reason": "the RMM sync was held"},
    "Snapshot Created": {
        "snapshot_id": "20261201T060412000Z-9f3a1c",
        "taken_at": datetime(2026, 12, 1, 6, 4, 12, tzinfo=UTC).isoformat(),
        "trigger": "schedule",
        "cycle_id": "20261201T060000Z-monthly",
    },
    "Exports Ready": {
        "cycle_id": "20261201T060000Z-monthly",
        "snapshot_id": "20261201T060412000Z-9f3a1c",
        "keys": ["exports/2026/12/20261201T060412000Z-9f3a1c/all_coverages.csv"],
    },
}


@pytest.mark.parametrize("model", ALL_EVENTS, ids=lambda m: m.detail_type)
def test_each_schema_accepts_what_the_code_publishes_and_refuses_what_it_never_would(
    model: type[Event],
) -> None:
    schema = json.loads((SCHEMAS / schema_file_name(model)).read_text())
    assert schema["x-eventbridge"] == {"source": "trueup", "detail-type": model.detail_type}
    published = model.model_validate(EXAMPLES[model.detail_type]).model_dump(mode="json")
    jsonschema.validate(published, schema, format_checker=jsonschema.FormatChecker())
    # A required field missing, or a source trueup does not have, is refused.
    for broken in ({k: v for k, v in published.items() if k != sorted(schema["required"])[0]},):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
    if "source" in published:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**published, "source": "psa"}, schema)

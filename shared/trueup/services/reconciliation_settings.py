"""The reconciliation settings document: read with defaults, replaced whole after validation."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    StringConstraints,
    ValidationError,
)

from trueup.domain.models import SLUG_PATTERN, Coverage, DeviceClass, Settings
from trueup.errors import InvalidInput
from trueup.store.table import TrueupTable

# What a person may send (README, "Settings"): strict types (no `true` for 1, no "30" for 30), and a
# range for everything, so that no value can hide every gap (a tolerance of 10^40) or overflow the
# table's 400 KB item. The engine's own models take what these let through.
MAX_TOLERANCE = 1000
MAX_STALE_DAYS = 3650
MAX_COVERAGES = 50
MAX_COUNTED_STATUSES = 20
MAX_HOLD_RECORDS = 1_000_000
MAX_LIST = 200  # product ids, vendor names, name fragments per coverage
_NO_CONTROL = r"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]*$"  # printable, not blank
Text = Annotated[StrictStr, StringConstraints(min_length=1, max_length=200, pattern=_NO_CONTROL)]
Identifier = Annotated[StrictStr, StringConstraints(min_length=1, max_length=100, pattern=_NO_CONTROL)]
Status = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64, pattern=_NO_CONTROL)]


def _number_not_text_or_boolean(value: Any) -> Any:
    # JSON's 30 and 30.0 are both the whole number 30; "30" and true are not numbers at all.
    if isinstance(value, bool | str):
        raise ValueError("must be a number, not text or true/false")
    return value


WholeNumber = Annotated[int, BeforeValidator(_number_not_text_or_boolean)]

# The allowed values of each field, as a refusal names them.
RULES = {
    "tolerance": f"a whole number of devices from 0 to {MAX_TOLERANCE}",
    "stale_after_days": f"a whole number of days from 1 to {MAX_STALE_DAYS}",
    "hold_shrink_percent": "a whole percentage from 0 to 100",
    "hold_shrink_records": f"a whole number of records from 0 to {MAX_HOLD_RECORDS:,}",
    "stale_data_hours": "a whole number of hours from 1 to 8760",
    "counted_statuses": f"1 to {MAX_COUNTED_STATUSES} Pax8 statuses, each 1 to 64 printable characters",
    "coverages": f"null (use the proposal) or a list of at most {MAX_COVERAGES} coverages",
    "id": "a slug (lower-case letters, digits and single hyphens), at most 64 characters",
    "name": "1 to 200 printable characters",
    "product_ids": f"at most {MAX_LIST} ids, each 1 to 100 printable characters",
    "vendor_names": f"at most {MAX_LIST} names, each 1 to 200 printable characters",
    "name_contains": f"at most {MAX_LIST} fragments, each 1 to 200 printable characters",
    "device_classes": f"1 to 7 of {', '.join(c.value for c in DeviceClass)}",
    "required": "true or false",
}


class CoverageDocument(Coverage):
    # A coverage must name at least one way to find its products (the description says so too).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [field], "properties": {field: {"minItems": 1}}}
                for field in ("product_ids", "vendor_names", "name_contains")
            ]
        }
    )
    id: Annotated[StrictStr, StringConstraints(max_length=64, pattern=SLUG_PATTERN)]
    name: Text
    product_ids: list[Identifier] = Field(default_factory=list, max_length=MAX_LIST)
    vendor_names: list[Text] = Field(default_factory=list, max_length=MAX_LIST)
    name_contains: list[Text] = Field(default_factory=list, max_length=MAX_LIST)
    required: StrictBool = False


class SettingsDocument(Settings):
    coverages: list[CoverageDocument] | None = Field(default=None, max_length=MAX_COVERAGES)  # type: ignore[assignment]
    counted_statuses: list[Status] = Field(
        default_factory=lambda: list(Settings().counted_statuses),
        min_length=1,
        max_length=MAX_COUNTED_STATUSES,
    )
    stale_after_days: WholeNumber = Field(default=30, ge=1, le=MAX_STALE_DAYS)
    tolerance: WholeNumber = Field(default=0, ge=0, le=MAX_TOLERANCE)
    hold_shrink_percent: WholeNumber = Field(default=20, ge=0, le=100)
    hold_shrink_records: WholeNumber = Field(default=10, ge=0, le=MAX_HOLD_RECORDS)
    stale_data_hours: WholeNumber = Field(default=26, ge=1, le=8760)


def load_settings(table: TrueupTable | None = None) -> tuple[Settings, int]:
    """The stored settings (defaults until someone saves some) and their version."""
    doc, version = (table or TrueupTable()).get_settings()
    return (Settings.model_validate(doc) if doc else Settings()), version


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "document"
    field = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str)), "")
    rule = RULES.get(field)
    message = (
        "Input is not in the allowed form" if error["type"] == "string_pattern_mismatch" else error["msg"]
    )
    return f"{where}: {message}" + (f" (allowed: {rule})" if rule else "")


def validate_settings(document: Any) -> Settings:
    """A whole settings document, or InvalidInput naming every problem and what is allowed."""
    try:
        checked = SettingsDocument.model_validate(document)
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()[:10]]
        more = len(exc.errors()) - len(problems)
        raise InvalidInput(
            "invalid settings: " + "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
        ) from None
    settings = Settings.model_validate(checked.model_dump(mode="json"))
    if settings.coverages is not None:
        repeated = sorted(i for i, n in Counter(c.id for c in settings.coverages).items() if n > 1)
        if repeated:
            raise InvalidInput(
                f"invalid settings: coverage ids must be unique, repeated: {', '.join(repeated)}"
            )
        empty = [c.id for c in settings.coverages if not (c.product_ids or c.vendor_names or c.name_contains)]
        if empty:
            raise InvalidInput(
                f"invalid settings: coverage {', '.join(empty)} names no product_ids, vendor_names "
                "or name_contains, so it could never hold a licence"
            )
    return settings


# What GET /settings adds to the document; a PUT of what GET answered may carry them back.
READ_ONLY = ("updated_at", "updated_by")


def settings_view() -> tuple[dict[str, Any], int]:
    """The settings (defaults until someone saves some), with when and by whom they last changed, and
    their version (0: never saved)."""
    doc, version, changed = TrueupTable().get_settings_record()
    settings = Settings.model_validate(doc) if doc else Settings()
    return {**settings.model_dump(mode="json"), **dict.fromkeys(READ_ONLY), **(changed or {})}, version


def save_settings(
    document: Any, by: dict[str, Any] | None = None, if_match: int | None = None
) -> tuple[dict[str, Any], int]:
    """Replace the settings (`by` changed them) over the version read, or the one If-Match names (412
    when stale); a rejected document changes nothing. Answers them and their new version."""
    from trueup.errors import Conflict, PreconditionFailed
    from trueup.services.versions import check_version

    if isinstance(document, dict):
        document = {k: v for k, v in document.items() if k not in READ_ONLY}
    settings = validate_settings(document)
    from trueup.services.audit import audit_entry

    table = TrueupTable()
    stored, version = table.get_settings()
    before = stored or Settings().model_dump(mode="json")  # the defaults, until someone saves some
    now = datetime.now(UTC)
    changed = {"updated_at": now.isoformat().replace("+00:00", "Z"), "updated_by": by}
    after = settings.model_dump(mode="json")
    altered = sorted(k for k in after if before.get(k) != after[k])
    what = "settings: " + (", ".join(altered) if altered else "saved unchanged")
    check_version(if_match, version, "the settings", "GET /settings")
    try:
        written = table.put_settings(
            after, version, changed, audit_entry(now, by, "settings", what, before, after)
        )
    except Conflict as exc:
        if if_match is not None:
            raise PreconditionFailed(
                "the settings changed while this request was handled: read them again"
            ) from exc
        raise
    return {**settings.model_dump(mode="json"), **changed}, written

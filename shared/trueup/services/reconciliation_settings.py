"""The reconciliation settings document: read with defaults, replaced whole after validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from trueup.domain.models import Settings
from trueup.errors import InvalidInput
from trueup.store.table import TrueupTable


def load_settings(table: TrueupTable | None = None) -> tuple[Settings, int]:
    """The stored settings (defaults until someone saves some) and their version."""
    doc, version = (table or TrueupTable()).get_settings()
    return (Settings.model_validate(doc) if doc else Settings()), version


def validate_settings(document: Any) -> Settings:
    """A whole settings document, or InvalidInput naming every problem."""
    try:
        settings = Settings.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'document'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidInput(f"invalid settings: {problems}") from None
    if settings.coverages is not None:
        ids = [c.id for c in settings.coverages]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise InvalidInput(
                f"invalid settings: coverage ids must be unique, repeated: {', '.join(duplicates)}"
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


def settings_view() -> dict[str, Any]:
    """The settings (defaults until someone saves some), with when and by whom they last changed."""
    doc, _, changed = TrueupTable().get_settings_record()
    settings = Settings.model_validate(doc) if doc else Settings()
    return {**settings.model_dump(mode="json"), **dict.fromkeys(READ_ONLY), **(changed or {})}


def save_settings(document: Any, by: dict[str, Any] | None = None) -> dict[str, Any]:
    """Replace the settings (`by` changed them); a rejected document changes nothing."""
    if isinstance(document, dict):
        document = {k: v for k, v in document.items() if k not in READ_ONLY}
    settings = validate_settings(document)
    table = TrueupTable()
    _, version = table.get_settings()
    changed = {"updated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "updated_by": by}
    table.put_settings(settings.model_dump(mode="json"), version, changed)
    return {**settings.model_dump(mode="json"), **changed}

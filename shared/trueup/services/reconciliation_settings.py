"""The reconciliation settings document: read with defaults, replaced whole after validation."""

from __future__ import annotations

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


def save_settings(document: Any) -> Settings:
    """Replace the settings; a rejected document changes nothing."""
    settings = validate_settings(document)
    table = TrueupTable()
    _, version = table.get_settings()
    table.put_settings(settings.model_dump(mode="json"), version)
    return settings

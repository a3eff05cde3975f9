"""The demo data set, as the vendors would send it (wire-format dicts, vendor field names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WireRecord = dict[str, Any]


@dataclass
class DemoDataset:
    """Everything the demo upstreams serve. Lists are in id order; records are vendor JSON objects."""

    pax8_companies: list[WireRecord] = field(default_factory=list)
    pax8_products: list[WireRecord] = field(default_factory=list)
    pax8_subscriptions: list[WireRecord] = field(default_factory=list)
    ninjaone_organizations: list[WireRecord] = field(default_factory=list)
    ninjaone_devices: list[WireRecord] = field(default_factory=list)

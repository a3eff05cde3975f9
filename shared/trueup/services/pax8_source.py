"""The Pax8 side of a sync: companies, products and subscriptions, read into a generation."""

from __future__ import annotations

from trueup.config import config
from trueup.services.syncs import Fetch
from trueup.store.generations import GenerationWriter
from trueup.vendors import pax8
from trueup.vendors.credentials import credentials_from_secret


def write_pax8(writer: GenerationWriter) -> None:
    settings = config()
    credentials = credentials_from_secret(settings.pax8_secret_id, "Pax8", "PAX8_SECRET_ID")
    with pax8.Pax8Client(
        credentials,
        api_url=settings.pax8_api_url or pax8.DEFAULT_API_URL,
        token_url=settings.pax8_token_url or pax8.DEFAULT_TOKEN_URL,
    ) as client:
        for listing in client.fetch_lists():
            writer.add_all(listing.items)
            writer.add_all(listing.skipped)


def pax8_fetch() -> Fetch:
    return Fetch(write_pax8, vendor="Pax8")

"""The RMM side of a sync: one RMM source's organizations and devices, read into a generation."""

from __future__ import annotations

from contextlib import closing
from functools import partial

from trueup.config import config
from trueup.services.syncs import Fetch
from trueup.sources import display_name
from trueup.store.generations import GenerationWriter
from trueup.vendors.credentials import credentials_from_secret
from trueup.vendors.rmm import RmmConnection, create_adapter


def write_rmm(source: str, writer: GenerationWriter) -> None:
    settings = config()
    variable, secret_id = settings.rmm_secret_id(source)
    credentials = credentials_from_secret(secret_id, display_name(source), variable)
    adapter = create_adapter(source, RmmConnection(credentials, settings.rmm_url(source)))
    with closing(adapter):
        # Organizations first: mapping reads only them, without streaming every device.
        writer.add_all(adapter.organizations())
        writer.add_all(adapter.devices())


def rmm_fetch(source: str) -> Fetch:
    return Fetch(partial(write_rmm, source), vendor=display_name(source), rmm_source=source)

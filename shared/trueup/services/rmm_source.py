"""The RMM side of a sync: the configured RMM's organizations and devices, read into a generation."""

from __future__ import annotations

from contextlib import closing

from trueup.config import config
from trueup.services.syncs import Fetch
from trueup.store.generations import GenerationWriter
from trueup.vendors.credentials import credentials_from_secret
from trueup.vendors.rmm import NAMES, RmmConnection, create_adapter


def write_rmm(writer: GenerationWriter) -> None:
    settings = config()
    variable, secret_id = settings.rmm_secret_id()
    credentials = credentials_from_secret(secret_id, settings.rmm_source, variable)
    adapter = create_adapter(settings.rmm_source, RmmConnection(credentials, settings.rmm_url()))
    with closing(adapter):
        # Organizations first: mapping reads only them, without streaming every device.
        writer.add_all(adapter.organizations())
        writer.add_all(adapter.devices())


def rmm_fetch() -> Fetch:
    source = config().rmm_source
    return Fetch(write_rmm, vendor=NAMES.get(source, source), rmm_source=source)

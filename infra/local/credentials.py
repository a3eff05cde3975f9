"""The vendor credentials and endpoints `make run` uses, from the environment or a git-ignored `.env`.

Only the local stack reads them this way: in AWS the credentials live in Secrets Manager and the
endpoints in the template's parameters. A partial set of credentials is an error that names what is
missing, never a silent fall-back to demo data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trueup.errors import InvalidInput
from trueup.sources import parse_rmm_list
from trueup.vendors.credentials import ClientCredentials

PAX8_VARIABLES = ("PAX8_CLIENT_ID", "PAX8_CLIENT_SECRET")
# Each RMM's pair, as its vendor names it: NinjaOne's API client, Datto RMM's API key and secret key.
RMM_VARIABLES: dict[str, tuple[str, str]] = {
    "ninjaone": ("NINJAONE_CLIENT_ID", "NINJAONE_CLIENT_SECRET"),
    "datto": ("DATTO_API_KEY", "DATTO_API_SECRET"),
}
CREDENTIAL_VARIABLES = (*PAX8_VARIABLES, *(name for pair in RMM_VARIABLES.values() for name in pair))
DEFAULT_RMM = "ninjaone"


@dataclass(frozen=True)
class VendorCredentials:
    pax8: ClientCredentials
    rmm: Mapping[str, ClientCredentials]  # per RMM source in use

    @property
    def ninjaone(self) -> ClientCredentials:
        return self.rmm["ninjaone"]


@dataclass(frozen=True)
class VendorEndpoints:
    pax8_token_url: str | None  # None: the vendor's default
    pax8_api_url: str | None
    ninjaone_url: str | None  # a URL or a region key (us, eu, ca, oc, us2)
    datto_url: str | None = None  # a URL or a platform (merlot, concord, ...)


def rmm_sources(env: Mapping[str, str]) -> tuple[str, ...]:
    """The RMMs `make run` uses: TRUEUP_RMM, comma-separated (default: ninjaone)."""
    raw = env.get("TRUEUP_RMM", "").strip() or DEFAULT_RMM
    try:
        names = parse_rmm_list(raw)
    except ValueError as exc:
        raise InvalidInput(f"TRUEUP_RMM {exc}") from None
    missing = [name for name in names if name not in RMM_VARIABLES]  # an RMM without local credentials
    if missing:
        raise InvalidInput(f"TRUEUP_RMM: {', '.join(missing)} has no credential variables in {__name__}")
    return names


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a `.env` file (comments, blank lines, `export` and quotes allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise InvalidInput(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def local_environment(root: Path | None = None) -> dict[str, str]:
    """The process environment over a `.env` file in `root` (the environment wins)."""
    return {**read_dotenv((root or Path.cwd()) / ".env"), **os.environ}


def vendor_credentials(
    env: Mapping[str, str], rmms: tuple[str, ...] = (DEFAULT_RMM,)
) -> VendorCredentials | None:
    """The credentials of Pax8 and of each RMM in `rmms`, or None when none are set (demo mode)."""
    needed = [*PAX8_VARIABLES, *(name for rmm in rmms for name in RMM_VARIABLES[rmm])]
    present = [name for name in CREDENTIAL_VARIABLES if env.get(name, "").strip()]
    if not present:
        return None
    missing = [name for name in needed if name not in present]
    if missing:
        raise InvalidInput(
            f"incomplete vendor credentials: {', '.join(missing)} not set "
            f"(set all of {', '.join(needed)} for TRUEUP_RMM={','.join(rmms)}, or none of them for demo data)"
        )

    def pair(names: tuple[str, str]) -> ClientCredentials:
        return ClientCredentials(env[names[0]].strip(), env[names[1]].strip())

    return VendorCredentials(pax8=pair(PAX8_VARIABLES), rmm={rmm: pair(RMM_VARIABLES[rmm]) for rmm in rmms})


def vendor_endpoints(env: Mapping[str, str]) -> VendorEndpoints:
    return VendorEndpoints(
        pax8_token_url=env.get("PAX8_TOKEN_URL") or None,
        pax8_api_url=env.get("PAX8_API_URL") or None,
        ninjaone_url=env.get("NINJAONE_URL") or None,
        datto_url=env.get("DATTO_URL") or None,
    )


def demo_requested(env: Mapping[str, str]) -> bool:
    return env.get("TRUEUP_DEMO", "").strip().lower() in {"1", "true", "yes", "on"}

"""The page's static files, read from the package and prepared once per warm container.

The files live in `trueup/web/static/` (the layer carries them as `python/trueup/web/static/`) and
are read with importlib.resources, so they are found wherever the package is installed. Each asset
has a version (a digest of its bytes): the page refers to `static/<name>?v=<version>`, so a browser
may keep a versioned asset for a year and still sees a new release at once, because the page itself
is always revalidated.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from trueup.errors import NotFound

PAGE = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# `{{asset:app.js}}` in index.html becomes `static/app.js?v=<version>` (relative, so the page also
# works behind a path prefix such as an API Gateway stage).
_ASSET_REFERENCE = re.compile(r"\{\{asset:([A-Za-z0-9_.-]+)\}\}")


@dataclass(frozen=True)
class Asset:
    name: str
    body: str
    content_type: str
    version: str  # a digest of the body: also the ETag

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def _version(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


@functools.cache
def _files() -> dict[str, str]:
    folder = resources.files("trueup.web") / "static"
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(suffix) for suffix in CONTENT_TYPES)
    }


@functools.cache
def asset(name: str) -> Asset:
    """One static file by its name (never a path: only the files shipped in static/ are served)."""
    files = _files()
    if name == PAGE or name not in files:
        raise NotFound(f"no static file {name!r}")
    body = files[name]
    suffix = name[name.rindex(".") :]
    return Asset(name, body, CONTENT_TYPES[suffix], _version(body))


@functools.cache
def page() -> Asset:
    """index.html with every `{{asset:name}}` replaced by the asset's versioned URL."""

    def versioned(match: re.Match[str]) -> str:
        found = asset(match.group(1))
        return f"static/{found.name}?v={found.version}"

    body = _ASSET_REFERENCE.sub(versioned, _files()[PAGE])
    return Asset(PAGE, body, CONTENT_TYPES[".html"], _version(body))

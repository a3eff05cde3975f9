"""How the ApiFunction serves the page's files: types, caching, revalidation, compression, 404s.

These drive the real resolver with API Gateway (payload 2.0) events; no browser needed.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

import pytest

from trueup.api.resolver import build_resolver
from trueup.api.routes import routers_of
from trueup.config import config
from trueup.web import assets


@pytest.fixture(autouse=True)
def function_environment(monkeypatch: pytest.MonkeyPatch) -> Any:
    """ApiFunction's environment as template.yaml sets it, with Entra ID as the issuer."""
    for name, value in {
        "TRUEUP_TABLE": "t",
        "TRUEUP_BUCKET": "b",
        "TRUEUP_EVENT_BUS": "e",
        "TRUEUP_SIGN_IN": "oidc",
        "TRUEUP_SIGN_IN_ISSUER": "https://login.microsoftonline.com/tenant-1/v2.0",
        "TRUEUP_SIGN_IN_CLIENT_ID": "app-1",
        "TRUEUP_SIGN_IN_ORIGINS": "",
    }.items():
        monkeypatch.setenv(name, value)
    config.cache_clear()
    yield
    config.cache_clear()


def get(path: str, query: str = "", **headers: str) -> dict[str, Any]:
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "127.0.0.1:3000", **headers},
        "queryStringParameters": dict(p.split("=", 1) for p in query.split("&")) if query else None,
        "requestContext": {"http": {"method": "GET", "path": path}, "stage": "$default", "requestId": "test"},
        "isBase64Encoded": False,
    }
    answer: dict[str, Any] = build_resolver(routers_of("api")).resolve(event, None)  # type: ignore[arg-type]
    return answer


def body(answer: dict[str, Any]) -> str:
    raw = base64.b64decode(answer["body"]) if answer["isBase64Encoded"] else answer["body"].encode()
    if answer["headers"].get("Content-Encoding") == "gzip":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


def test_the_page_is_html_always_revalidated_and_names_its_files_by_version() -> None:
    answer = get("/")
    assert answer["statusCode"] == 200
    headers = answer["headers"]
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["ETag"] == assets.page().etag
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    # The page may reach the issuer (discovery, token endpoint) and nothing else beyond its origin.
    assert "connect-src 'self' https://login.microsoftonline.com;" in headers["Content-Security-Policy"]
    html = body(answer)
    assert "{{asset:" not in html
    assert f'src="static/app.js?v={assets.asset("app.js").version}"' in html
    assert f'href="static/app.css?v={assets.asset("app.css").version}"' in html


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_a_versioned_file_is_kept_for_a_year_and_an_unversioned_one_revalidated(
    name: str, content_type: str
) -> None:
    version = assets.asset(name).version
    answer = get(f"/static/{name}", f"v={version}")
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == content_type
    assert answer["headers"]["Cache-Control"] == "public, max-age=31536000, immutable"
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"
    assert body(answer) == assets.asset(name).body
    for query in ("", "v=an-old-release"):
        assert get(f"/static/{name}", query)["headers"]["Cache-Control"] == "no-cache"


def test_an_unchanged_file_answers_304_without_a_body() -> None:
    etag = assets.asset("app.js").etag
    answer = get("/static/app.js", **{"if-none-match": etag, "accept-encoding": "gzip"})
    assert answer["statusCode"] == 304
    assert not answer["body"]
    assert answer["headers"]["ETag"] == etag
    assert get("/static/app.js", **{"if-none-match": '"something-else"'})["statusCode"] == 200
    assert get("/", **{"if-none-match": f"W/{assets.page().etag}"})["statusCode"] == 304


def test_files_are_gzipped_for_browsers_that_accept_it() -> None:
    answer = get("/static/app.js", **{"accept-encoding": "gzip, deflate, br"})
    assert answer["headers"]["Content-Encoding"] == "gzip"
    assert answer["headers"]["Vary"] == "Accept-Encoding"
    assert body(answer) == assets.asset("app.js").body


@pytest.mark.parametrize("name", ["nothing.js", "index.html", "assets.py", "..%2Fassets.py", "__init__.py"])
def test_only_the_shipped_static_files_are_served(name: str) -> None:
    answer = get(f"/static/{name}")
    assert answer["statusCode"] == 404
    assert re.match(r"no static file '.*'", json.loads(answer["body"])["message"])


def test_the_page_may_reach_the_cognito_sign_in_domain_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUEUP_SIGN_IN_ISSUER", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC")
    monkeypatch.setenv("TRUEUP_SIGN_IN_ORIGINS", "https://trueup-1a2b3c4d.auth.eu-west-1.amazoncognito.com")
    config.cache_clear()
    policy = get("/")["headers"]["Content-Security-Policy"]
    assert (
        "connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com "
        "https://trueup-1a2b3c4d.auth.eu-west-1.amazoncognito.com;"
    ) in policy
    monkeypatch.setenv("TRUEUP_SIGN_IN", "off")
    config.cache_clear()
    assert "connect-src 'self';" in get("/")["headers"]["Content-Security-Policy"]

"""Routes: the Reconciliation page at / and its static files at /static/{asset}.

Served by the ApiFunction, so the page and the API share one origin (no CORS, one authorization).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import QueryParam, Request
from trueup.config import config
from trueup.web import assets

router = APIGatewayHttpRouter()

VERSION = QueryParam("v", "The file's version, as the page names it.")
REQUESTS = {"GET /static/{asset}": Request(query=(VERSION,))}

# The page is always revalidated (a cheap 304 when unchanged), so a release shows at once; the files it
# names carry their digest in the URL, so those never need asking again.
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
# Everything the page loads or calls is same-origin, but for sign-in: the issuer's discovery document and
# token endpoint (TRUEUP_SIGN_IN_ORIGINS names any other origin these live on, such as Cognito's sign-in
# domain). The CSV download is a navigation to the presigned link, which connect-src does not govern.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def content_security_policy() -> str:
    settings = config()
    connect = ["'self'"]
    if settings.sign_in == "oidc":
        for url in [settings.sign_in_issuer or "", *(settings.sign_in_origins or "").split()]:
            parts = urlsplit(url)
            if parts.scheme in ("https", "http") and parts.netloc:
                origin = f"{parts.scheme}://{parts.netloc}"
                if origin not in connect:
                    connect.append(origin)
    return CONTENT_SECURITY_POLICY.format(connect=" ".join(connect))


def _serve(found: assets.Asset, cache_control: str) -> Response[str | None]:
    headers = {
        "Cache-Control": cache_control,
        "ETag": found.etag,
        "Vary": "Accept-Encoding",  # the body is gzipped for clients that accept it
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if found.name == assets.PAGE:
        headers["Content-Security-Policy"] = content_security_policy()
    if_none_match = router.current_event.headers.get("if-none-match") or ""
    if found.etag in (tag.strip().removeprefix("W/") for tag in if_none_match.split(",")):
        return Response(status_code=304, headers=headers, body=None, compress=False)
    return Response(status_code=200, content_type=found.content_type, headers=headers, body=found.body)


@router.get(
    "/",
    summary="The Reconciliation page (HTML)",
    tags=["page"],
    compress=True,
    responses={
        200: {"description": "The page", "content": {"text/html": {}}},
        304: {"description": "Unchanged"},
    },
)
def reconciliation_page() -> Response[str | None]:
    return _serve(assets.page(), REVALIDATE)


@router.get(
    "/static/<asset>",
    summary="One of the page's static files (CSS, JavaScript, icons)",
    tags=["page"],
    compress=True,
    responses={
        200: {"description": "The file", "content": {"text/css": {}, "text/javascript": {}}},
        304: {"description": "Unchanged"},
        404: {"description": "No such file"},
    },
)
def static_asset(asset: str) -> Response[str | None]:
    found = assets.asset(asset)
    v = VERSION.read(router.current_event.query_string_parameters)
    # Only the current version may be kept for a year: a stale or missing ?v= must be revalidated.
    return _serve(found, IMMUTABLE if v == found.version else REVALIDATE)

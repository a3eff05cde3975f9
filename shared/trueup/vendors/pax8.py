"""The Pax8 partner API client: companies, products and subscriptions.

Authentication is OAuth2 client credentials against `POST /v1/token` (JSON body, audience
`https://api.pax8.com`); the token is reused until shortly before `expires_in`. Lists are paged
(`page`, `size`, `sort`; envelope `content` + `page{size,totalElements,totalPages,number}`): page 0
is read first, the remaining pages concurrently under a rate limit. Records that cannot be read are
reported as `SkippedRecord`; a listing that comes back short raises `UpstreamError` rather than
returning a silently incomplete list.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Annotated, Any, Generic, Self, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from trueup.domain.models import Company, Pax8Data, Product, SkippedRecord, Subscription
from trueup.errors import UpstreamError
from trueup.vendors.credentials import ClientCredentials
from trueup.vendors.paging import pages_concurrently
from trueup.vendors.resilience import RateLimiter, RetryPolicy, VendorHttp, short_body
from trueup.vendors.vendor_auth import OAuthBearerAuth, read_bearer_token, token_post

log = logging.getLogger("trueup.vendors.pax8")

SOURCE = "pax8"
DEFAULT_TOKEN_URL = "https://api.pax8.com/v1/token"
DEFAULT_API_URL = "https://api.pax8.com/v1"
AUDIENCE = "https://api.pax8.com"
PAGE_SIZE = 200  # the documented maximum of `size`

# Sort keys must be among the values the partner spec enumerates for each list. A fixed order keeps
# page boundaries stable between requests; whatever still moves is caught by the totalElements check.
COMPANIES_SORT = "name"
PRODUCTS_SORT = "name"
SUBSCRIPTIONS_SORT = "createdDate,asc"

# Pax8 allows about 1,000 requests a minute per partner; stay below it with some headroom.
DEFAULT_RATE_LIMIT = (900, 60.0)

# Used when the token response carries no readable `expires_in`: short enough that a token of
# unknown life is not relied on for long (a 401 would still trigger one refresh).
FALLBACK_TOKEN_LIFETIME = 300.0

T = TypeVar("T")
# A record that de-duplication can key on.
R = TypeVar("R", bound=Company | Product | Subscription)


# --- dates ----------------------------------------------------------------------------------------


def parse_pax8_datetime(value: object) -> datetime | None:
    """Read a Pax8 date or date-time into an aware UTC datetime; None for None or "".

    Pax8 sends `2020-12-03` (read as UTC midnight), `2021-01-01T08:30:00Z` and
    `2023-08-11T11:33:12.314-0600`. Raises ValueError naming the value for anything unreadable.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            # Python 3.11's fromisoformat reads all three forms, offsets without a colon included.
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"unreadable Pax8 date {value!r}") from None
    else:
        raise ValueError(f"unreadable Pax8 date {value!r}: expected a string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        # Pax8 works in UTC: a plain date is that day's UTC midnight, and so is any value sent
        # without an offset.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- wire models ------------------------------------------------------------------------------------
# The validators raise messages without the field name; `_describe_invalid` prefixes the wire field,
# giving reasons such as "quantity 'ten' is not a number".


def _required_string(value: object) -> str:
    if value is None:
        raise ValueError("is null")
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    if not value.strip():
        raise ValueError("is empty")
    return value


def _optional_text(value: object) -> str | None:
    # Descriptive fields never decide a count, so an odd value is kept as text rather than rejected.
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float):
        return str(value)
    return None


def _whole_number(value: object) -> int:
    if value is None:
        raise ValueError("is null")
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a number")
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a number")
    else:
        raise ValueError(f"{value!r} is not a number")
    if number.adjusted() >= 12:
        # No partner holds a trillion licences; refusing early also keeps `int()` cheap.
        raise ValueError(f"{value!r} is not a plausible quantity")
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number")
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return int(number)


def _money(value: object) -> Decimal | None:
    # A price never decides a count: one that is missing or unreadable leaves the subscription's
    # licences counted and its price unknown (the row then says it has no price), never a guess.
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, int | float | str) else None
    except InvalidOperation:
        return None
    if amount is None or not amount.is_finite() or amount < 0 or amount.adjusted() >= 12:
        return None
    return amount


def _lenient_date(value: object) -> datetime | None:
    try:
        return parse_pax8_datetime(value)
    except ValueError:
        return None


def _wire_date(value: object) -> datetime | None:
    try:
        return parse_pax8_datetime(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a readable date") from None


WireId = Annotated[str, BeforeValidator(_required_string)]
RequiredText = Annotated[str, BeforeValidator(_required_string)]
OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
WireDate = Annotated[datetime | None, BeforeValidator(_wire_date)]
Money = Annotated[Decimal | None, BeforeValidator(_money)]
LenientDate = Annotated[datetime | None, BeforeValidator(_lenient_date)]


class WireRecord(BaseModel):
    """A Pax8 record as sent: camelCase names, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    id: WireId


class CompanyRecord(WireRecord):
    name: RequiredText
    status: OptionalText = None

    def to_domain(self) -> Company:
        return Company(id=self.id, name=self.name, status=self.status)


class ProductRecord(WireRecord):
    name: RequiredText
    vendor_name: OptionalText = Field(default=None, alias="vendorName")

    def to_domain(self) -> Product:
        return Product(id=self.id, name=self.name, vendor_name=self.vendor_name)


class CommitmentRecord(BaseModel):
    """A subscription's `commitmentTerm`: e.g. {"term": "1-Year", "endDate": "2027-03-01T00:00:00Z"}."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    term: OptionalText = None
    end_date: LenientDate = Field(default=None, alias="endDate")


def _commitment(value: object) -> object:
    return value if isinstance(value, dict) else None  # anything else: no commitment known


class SubscriptionRecord(WireRecord):
    company_id: WireId = Field(alias="companyId")
    product_id: WireId = Field(alias="productId")
    product_name: OptionalText = Field(default=None, alias="productName")
    quantity: WholeNumber
    # Kept as sent: Pax8 adds statuses and billing terms over time, and unknown ones must not be lost.
    status: RequiredText
    billing_term: OptionalText = Field(default=None, alias="billingTerm")
    start_date: WireDate = Field(default=None, alias="startDate")
    end_date: WireDate = Field(default=None, alias="endDate")
    # Per unit and per billing term (Pax8: "the price for the customer", "the price for the Partner").
    price: Money = None
    partner_cost: Money = Field(default=None, alias="partnerCost")
    currency_code: OptionalText = Field(default=None, alias="currencyCode")
    commitment: Annotated[CommitmentRecord | None, BeforeValidator(_commitment)] = Field(
        default=None, alias="commitmentTerm"
    )

    def to_domain(self) -> Subscription:
        return Subscription(
            id=self.id,
            company_id=self.company_id,
            product_id=self.product_id,
            product_name=self.product_name,
            quantity=self.quantity,
            status=self.status,
            billing_term=self.billing_term,
            start_date=self.start_date,
            end_date=self.end_date,
            price=self.price,
            partner_cost=self.partner_cost,
            currency=self.currency_code.strip().upper() if self.currency_code else None,
            commitment_term=self.commitment.term if self.commitment else None,
            commitment_end=self.commitment.end_date if self.commitment else None,
        )


class PageInfo(BaseModel):
    """The `page` block of a Pax8 list response."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    size: int | None = Field(default=None, ge=0)
    total_elements: int = Field(alias="totalElements", ge=0)
    total_pages: int = Field(alias="totalPages", ge=0)
    number: int | None = Field(default=None, ge=0)


def _describe_invalid(exc: ValidationError, prefix: str = "") -> str:
    reasons = []
    for error in exc.errors(include_url=False):
        where = prefix + (".".join(str(part) for part in error["loc"]) or "record")
        if error["type"] == "missing":
            reasons.append(f"{where} is missing")
        elif error["type"] == "value_error" and "error" in error.get("ctx", {}):
            reasons.append(f"{where} {error['ctx']['error']}")
        else:
            reasons.append(f"{where} {error['input']!r}: {error['msg']}")
    return "; ".join(reasons)


WireT = TypeVar("WireT", bound=WireRecord)


def _read(
    item: object, kind: str, model: type[WireT], convert: Callable[[WireT], T], *, owner_field: str | None
) -> T | SkippedRecord:
    """Validate one list item; `owner_field` names the company it belongs to, for the skip report."""
    if not isinstance(item, dict):
        return SkippedRecord(
            source=SOURCE, kind=kind, id=None, reason=f"record is not a JSON object ({type(item).__name__})"
        )
    raw_id = item.get("id")
    record_id = raw_id if isinstance(raw_id, str) and raw_id else None
    owner = item.get(owner_field) if owner_field else None
    company_id = owner if isinstance(owner, str) and owner else None
    try:
        return convert(model.model_validate(item))
    except ValidationError as exc:
        return SkippedRecord(
            source=SOURCE, kind=kind, id=record_id, reason=_describe_invalid(exc), company_id=company_id
        )


def read_company(item: object) -> Company | SkippedRecord:
    """One item of `GET /companies` as a Company, or the reason it cannot be used."""
    return _read(item, "company", CompanyRecord, CompanyRecord.to_domain, owner_field="id")


def read_product(item: object) -> Product | SkippedRecord:
    """One item of `GET /products` as a Product, or the reason it cannot be used."""
    return _read(item, "product", ProductRecord, ProductRecord.to_domain, owner_field=None)


def read_subscription(item: object) -> Subscription | SkippedRecord:
    """One item of `GET /subscriptions` as a Subscription, or the reason it cannot be used."""
    return _read(
        item, "subscription", SubscriptionRecord, SubscriptionRecord.to_domain, owner_field="companyId"
    )


# --- errors -----------------------------------------------------------------------------------------


def describe_token_error(body: object) -> str | None:
    """The token endpoint's `{error, error_description}` as "access_denied: Unauthorized"."""
    if not isinstance(body, dict):
        return None
    error, description = body.get("error"), body.get("error_description")
    if not isinstance(error, str) or not error:
        return None
    return f"{error}: {description}" if isinstance(description, str) and description else error


def describe_api_error(body: object) -> str | None:
    """The API's `{type, message, instance, status, details}` as "NOT_FOUND: Company Not Found: ..."."""
    if not isinstance(body, dict):
        return None
    kind, message = body.get("type"), body.get("message")
    parts = [str(part) for part in (kind, message) if isinstance(part, str) and part]
    if not parts:
        return None
    text = ": ".join(parts)
    details = body.get("details")
    if isinstance(details, list):
        notes = [d["message"] for d in details if isinstance(d, dict) and isinstance(d.get("message"), str)]
        if notes:
            text += f" ({'; '.join(notes)})"
    return text


def describe_pax8_error(response: httpx.Response) -> str:
    """Pax8's own message for a failed response, whichever envelope it uses; else a body excerpt."""
    try:
        body = response.json()
    except ValueError:
        body = None
    described = describe_token_error(body) or describe_api_error(body)
    if described:
        return described
    return short_body(response) or "(empty body)"


def _redact(text: str, secret: str) -> str:
    # An upstream that echoes the request body must not leak the secret into an exception or a log.
    return text.replace(secret, "***") if secret else text


# --- the client -------------------------------------------------------------------------------------


@dataclass
class ListResult(Generic[T]):
    """The records of one Pax8 list and the ones that could not be read."""

    items: list[T]
    skipped: list[SkippedRecord] = field(default_factory=list)


@dataclass
class _Page:
    number: int
    content: list[Any]
    info: PageInfo


@dataclass
class _Listing(Generic[R]):
    result: ListResult[R]
    pages: int
    unique: int
    expected: int
    totals_seen: set[int]

    @property
    def complete(self) -> bool:
        return self.unique == self.expected and self.totals_seen == {self.expected}


class Pax8Client:
    """Reads companies, products and subscriptions from the Pax8 partner API.

    Every request, the token request included, goes through `VendorHttp` (retries, 401
    refresh, rate limit). Thread-safe; the httpx client is created on first use and reused.
    """

    def __init__(
        self,
        credentials: ClientCredentials,
        *,
        api_url: str = DEFAULT_API_URL,
        token_url: str = DEFAULT_TOKEN_URL,
        http: httpx.Client | None = None,
        policy: RetryPolicy | None = None,
        concurrency: int = 6,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._credentials = credentials
        self.api_url = api_url.rstrip("/")
        self.token_url = token_url
        self.concurrency = concurrency
        self._policy = policy or RetryPolicy()
        self._limiter = limiter or RateLimiter(*DEFAULT_RATE_LIMIT, sleep=sleep)
        self._sleep = sleep
        self._http = http
        self._owns_http = http is None
        self._resilient: VendorHttp | None = None
        self._sent_before_close = 0
        self._lock = threading.Lock()
        # Bounds the pages in flight across every list, so lists can be read side by side.
        self._in_flight = threading.BoundedSemaphore(concurrency)
        token_what = f"POST {urlsplit(token_url).path or '/'}"
        self._auth = OAuthBearerAuth(
            source=SOURCE,
            token_request=self._token_request,
            what=token_what,
            read_token=lambda response: read_bearer_token(
                response, source=SOURCE, what=token_what, default_lifetime=FALLBACK_TOKEN_LIFETIME
            ),
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"Pax8Client(api_url={self.api_url!r}, client_id={self._credentials.client_id!r})"

    # -- plumbing --

    def _client(self) -> VendorHttp:
        with self._lock:
            if self._resilient is None:
                if self._http is None:
                    self._http = httpx.Client(
                        headers={"Accept": "application/json", "User-Agent": "trueup"},
                        timeout=self._policy.timeout,
                    )
                secret = self._credentials.client_secret
                self._resilient = VendorHttp(
                    SOURCE,
                    self._http,
                    describe_error=lambda response: _redact(describe_pax8_error(response), secret),
                    auth=self._auth,
                    policy=self._policy,
                    limiter=self._limiter,
                    sleep=self._sleep,
                )
            return self._resilient

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries and token requests included."""
        current = self._resilient.requests_sent if self._resilient else 0
        return self._sent_before_close + current

    def close(self) -> None:
        with self._lock:
            if self._resilient is not None:
                self._sent_before_close += self._resilient.requests_sent
                self._resilient = None
            if self._http is not None and self._owns_http:
                self._http.close()
                self._http = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _token_request(self) -> httpx.Request:
        return token_post(
            self.token_url,
            timeout=self._policy.timeout,
            json={
                "client_id": self._credentials.client_id,
                "client_secret": self._credentials.client_secret,
                "audience": AUDIENCE,
                "grant_type": "client_credentials",
            },
        )

    def _fetch_page(self, path: str, sort: str, number: int) -> _Page:
        what = f"GET {path} page {number}"
        with self._in_flight:
            response = self._client().request(
                "GET",
                f"{self.api_url}{path}",
                what=what,
                params={"page": number, "size": PAGE_SIZE, "sort": sort},
            )

        def malformed(problem: str, *, retryable: bool = False) -> UpstreamError:
            return UpstreamError(
                SOURCE, f"{what}: malformed page: {problem}", status=response.status_code, retryable=retryable
            )

        try:
            body = response.json()
        except ValueError:
            # A truncated body can be transient; a wrong shape is not.
            raise malformed(f"body is not JSON: {short_body(response, 120)}", retryable=True) from None
        if not isinstance(body, dict):
            raise malformed(f"expected a JSON object, got {type(body).__name__}")
        content = body.get("content")
        if not isinstance(content, list):
            raise malformed("no `content` list")
        if not isinstance(body.get("page"), dict):
            raise malformed("no `page` object")
        try:
            info = PageInfo.model_validate(body["page"])
        except ValidationError as exc:
            raise malformed(_describe_invalid(exc, prefix="page.")) from None
        if info.total_pages > max(1, info.total_elements):
            raise malformed(
                f"totalPages {info.total_pages} is inconsistent with totalElements {info.total_elements}"
            )
        if info.size and info.total_pages * info.size < info.total_elements:
            raise malformed(
                f"totalPages {info.total_pages} of size {info.size} cannot hold "
                f"totalElements {info.total_elements}"
            )
        if info.number is not None and info.number != number:
            raise malformed(f"asked for page {number}, got page {info.number}")
        return _Page(number=number, content=content, info=info)

    def _list_once(self, path: str, sort: str, read: Callable[[object], R | SkippedRecord]) -> _Listing[R]:
        first = self._fetch_page(path, sort, 0)
        rest = pages_concurrently(
            lambda number: self._fetch_page(path, sort, number),
            range(1, first.info.total_pages),
            concurrency=self.concurrency,
            name="pax8-page",
        )
        pages = [first, *rest]
        items: list[R] = []
        skipped: list[SkippedRecord] = []
        seen: set[str] = set()
        anonymous = 0  # skipped records without an id: they cannot be de-duplicated, but they exist
        for page in pages:
            for raw in page.content:
                record = read(raw)
                record_id = record.id
                if record_id is not None:
                    if record_id in seen:
                        continue  # keep the first copy of a record that moved across a page boundary
                    seen.add(record_id)
                if isinstance(record, SkippedRecord):
                    skipped.append(record)
                    anonymous += record_id is None
                else:
                    items.append(record)
        return _Listing(
            result=ListResult(items=items, skipped=skipped),
            pages=len(pages),
            unique=len(seen) + anonymous,
            expected=first.info.total_elements,
            totals_seen={page.info.total_elements for page in pages},
        )

    def _list(self, path: str, sort: str, read: Callable[[object], R | SkippedRecord]) -> ListResult[R]:
        listing = self._list_once(path, sort, read)
        if not listing.complete:
            # Records were added, removed or re-sorted between pages: one fresh listing usually settles.
            log.warning(
                "pax8 %s: %d unique records but totalElements %s; listing again",
                path,
                listing.unique,
                "/".join(str(t) for t in sorted(listing.totals_seen)),
            )
            listing = self._list_once(path, sort, read)
            if not listing.complete:
                raise UpstreamError(
                    SOURCE,
                    f"GET {path} changed while paging: {listing.unique} unique records, totalElements "
                    f"{listing.expected} (pages reported {sorted(listing.totals_seen)}), "
                    "on two listings in a row",
                    retryable=True,
                )
        result = listing.result
        log.info(
            "pax8 %s: %d pages, %d records, %d skipped",
            path,
            listing.pages,
            len(result.items),
            len(result.skipped),
        )
        for record in result.skipped:
            log.warning(
                "pax8 %s: skipped %s %s: %s", path, record.kind, record.id or "(no id)", record.reason
            )
        return result

    # -- public lists --

    def companies(self) -> ListResult[Company]:
        return self._list("/companies", COMPANIES_SORT, read_company)

    def products(self) -> ListResult[Product]:
        return self._list("/products", PRODUCTS_SORT, read_product)

    def subscriptions(self) -> ListResult[Subscription]:
        return self._list("/subscriptions", SUBSCRIPTIONS_SORT, read_subscription)

    def fetch_lists(self) -> tuple[ListResult[Company], ListResult[Product], ListResult[Subscription]]:
        """Companies, products and subscriptions, read concurrently; the first failure fails all."""
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="pax8-list") as pool:
            companies = pool.submit(self.companies)
            products = pool.submit(self.products)
            subscriptions = pool.submit(self.subscriptions)
            return companies.result(), products.result(), subscriptions.result()

    def fetch_all(self, synced_at: datetime) -> Pax8Data:
        """One complete Pax8 sync: every company, product and subscription, plus what was skipped.

        The three lists are read side by side (their first pages at once), still never more than
        `concurrency` pages in flight in all.
        """
        companies, products, subscriptions = self.fetch_lists()
        return Pax8Data(
            companies=companies.items,
            products=products.items,
            subscriptions=subscriptions.items,
            skipped=[*companies.skipped, *products.skipped, *subscriptions.skipped],
            synced_at=synced_at,
        )

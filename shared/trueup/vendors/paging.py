"""One paging helper per style the vendors use.

- page numbers (Pax8: `page` + `size`, the total in the first page): `pages_concurrently` fetches
  the pages after the first side by side;
- an id cursor (NinjaOne: `pageSize` + `after=<last id>`, until an empty page): `pages_after_id`;
- a next-page URL (Datto RMM: `pageDetails.nextPageUrl`, empty on the last page): `pages_by_next_url`.

Each helper checks that paging moves forward and raises `UpstreamError` when it does not: a listing
that loops or stops early would otherwise turn into a wrong count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, TypeVar
from urllib.parse import urlsplit

from trueup.errors import UpstreamError

log = logging.getLogger("trueup.vendors")

P = TypeVar("P")


def pages_concurrently(
    fetch: Callable[[int], P], numbers: Sequence[int], *, concurrency: int, name: str
) -> list[P]:
    """Fetch pages `numbers` with up to `concurrency` threads; results in page order.

    The first failure cancels the pages not yet started and is raised.
    """
    if not numbers:
        return []
    failed = threading.Event()

    def fetch_unless_failed(number: int) -> P | None:
        # The failing worker raises the flag itself, so no page starts after a failure however
        # the threads happen to be scheduled.
        if failed.is_set():
            return None
        try:
            return fetch(number)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=min(concurrency, len(numbers)), thread_name_prefix=name) as pool:
        futures = [pool.submit(fetch_unless_failed, number) for number in numbers]
        wait(futures, return_when=FIRST_EXCEPTION)
        if failed.is_set():
            pool.shutdown(wait=True, cancel_futures=True)
            errors = [f.exception() for f in futures if f.done() and not f.cancelled()]
            raise next(error for error in errors if error is not None)
    pages = [future.result() for future in futures]
    return [page for page in pages if page is not None]


def _int_id(item: Any) -> int | None:
    if isinstance(item, dict):
        value = item.get("id")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def pages_after_id(
    fetch: Callable[[int | None, str], list[Any]], *, source: str, path: str
) -> Iterator[list[Any]]:
    """Every page of a list paged by `after=<the last id of the previous page>`, until an empty page.

    `fetch(after, where)` returns one page's records; `where` names the page in errors
    ("GET /v2/devices page 2 (after=4)"). A page without integer ids, or one that does not move past
    `after` (a server ignoring it), raises instead of skipping records or looping.
    """
    after: int | None = None
    page_number = 0
    records = 0
    while True:
        page_number += 1
        where = f"GET {path} page {page_number} (after={after if after is not None else 'none'})"
        page = fetch(after, where)
        if not page:
            log.info("%s %s: done, %d records in %d pages", source, path, records, page_number - 1)
            return
        ids = [vendor_id for vendor_id in map(_int_id, page) if vendor_id is not None]
        if not ids:
            # Without a readable id there is no `after` for the next page; guessing could skip records.
            raise UpstreamError(
                source,
                f"{where}: none of the {len(page)} records has an integer id, so paging cannot continue",
                retryable=False,
            )
        if after is not None and min(ids) <= after:
            raise UpstreamError(
                source,
                f"{where}: page does not advance (it holds id {min(ids)}, "
                f"not greater than after={after}); the server ignored `after`",
                retryable=False,
            )
        records += len(page)
        log.info("%s %s: page %d, %d records (after=%s)", source, path, page_number, len(page), after)
        yield page
        after = max(ids)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def pages_by_next_url(
    fetch: Callable[[str, str], tuple[P, str | None]], first_url: str, *, source: str, path: str
) -> Iterable[P]:
    """Every page of a list whose pages name the next one by URL (empty or missing on the last).

    `fetch(url, where)` returns (the page, the next page's URL). The next URL must stay on the
    first URL's scheme, host and port (the access token goes with it) and must not come back to a
    page already read; either raises instead of leaking the token or looping.
    """
    url = first_url
    seen = {first_url}
    page_number = 0
    while True:
        page_number += 1
        page, next_url = fetch(url, f"GET {path} page {page_number}")
        yield page
        if not next_url:
            log.info("%s %s: done in %d pages", source, path, page_number)
            return
        if _origin(next_url) != _origin(first_url):
            host = urlsplit(next_url).hostname or next_url[:60]
            raise UpstreamError(
                source,
                f"GET {path} page {page_number}: the next page is on another host ({host}); "
                "not following it with the access token",
                retryable=False,
            )
        if next_url in seen:
            raise UpstreamError(
                source,
                f"GET {path} page {page_number}: the next page link points back to a page already read, "
                "so paging would never end",
                retryable=False,
            )
        seen.add(next_url)
        url = next_url

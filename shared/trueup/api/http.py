"""What a router declares about its requests and answers, read at run time and described in /openapi.json.

Routers are plain Powertools routes (no resolver validation): a query parameter is declared once as a
`QueryParam` that both reads it (`read`) and describes it; a body is read into its `trueup.api.wire`
model by `body_of`, which imports pydantic only when a request has a body to read; an answer is the
service's JSON document, described by `answers`, naming its wire model. So a function's cold start
loads no pydantic for routes that only read, and a large snapshot is never parsed into models only to
be written out again. Each router module lists its parameters and bodies in `REQUESTS`, which
`trueup.api.openapi` adds to the description.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response

from trueup.errors import InvalidInput, Unprocessable

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from pydantic import BaseModel


class InvalidRequest(Unprocessable):
    """The request does not match the API's description (422): each problem, as "where: what"."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid request: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class QueryParam:
    """One query parameter: how it is read (and refused, 422 naming it) and how it is described."""

    name: str
    description: str
    integer: bool = False
    default: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    # The form a text parameter takes, for the description; the handler checks it itself and
    # answers 400 naming the problem (as the shared HTTP contract has it), not 422.
    pattern: str | None = None
    required: bool = False

    def read(self, query: Mapping[str, str] | None) -> Any:
        value = (query or {}).get(self.name)
        if value is None or (self.required and not value.strip()):
            if self.required:
                raise InvalidInput(f"the query parameter {self.name} is required: {self.description}")
            return self.default
        if not self.integer:
            return value
        try:
            number = int(value.strip(), 10)
        except ValueError:
            raise InvalidRequest([f"query.{self.name}: must be a whole number, got {value[:40]!r}"]) from None
        if self.minimum is not None and number < self.minimum:
            raise InvalidRequest([f"query.{self.name}: must be at least {self.minimum}"])
        if self.maximum is not None and number > self.maximum:
            raise InvalidRequest([f"query.{self.name}: must be at most {self.maximum}"])
        return number

    def schema(self) -> dict[str, Any]:
        if not self.integer:
            return {"type": "string", **({"pattern": self.pattern} if self.pattern else {})}
        bounds = {"minimum": self.minimum, "maximum": self.maximum, "default": self.default}
        return {"type": "integer", **{k: v for k, v in bounds.items() if v is not None}}


@dataclass(frozen=True)
class Request:
    """What an operation takes beyond its path: query parameters, and a body named by its wire model."""

    query: tuple[QueryParam, ...] = ()
    body: str | None = None  # a model of trueup.api.wire, or "object" for any JSON object
    # The form a path parameter takes (name -> pattern), for the description; the handler checks it
    # and answers 400 naming the problem.
    path: tuple[tuple[str, str], ...] = ()
    body_required: bool = True


def etag(version: int) -> str:
    """A stored document's version as an ETag (quoted, strong)."""
    return f'"{version}"'


def version_answers(conflict: str = "Another write won a race") -> dict[int, OpenAPIResponse]:
    """The answers of a write over a versioned document: 409 (`conflict`) and 412."""
    return {
        409: {"description": conflict},
        412: {"description": "If-Match names a version that is no longer the stored one"},
    }


def versioned(document: dict[str, Any]) -> Response[str]:
    """A stored document with its version as the ETag, never cached: 200."""
    return Response(
        status_code=200,
        content_type="application/json",
        body=json.dumps(document),
        headers={"ETag": etag(document["version"]), "Cache-Control": "no-store"},
    )


def if_match_version(value: str | None) -> int | None:
    """The version an If-Match header names: None without the header, -1 for `*` (any version)."""
    if value is None or not value.strip():
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if text == "*":
        return -1
    if not text.isdigit():
        raise InvalidInput(f'If-Match must be an ETag this API gave, such as "3", got {value[:40]!r}')
    return int(text)


def parse_cursor(value: str | None) -> int:
    """Where a page starts: the previous page's next cursor, an offset into the list (0: the first page)."""
    if value is None or not value.strip():
        return 0
    if not value.strip().isdigit() or len(value.strip()) > 9:
        raise InvalidInput(f"malformed cursor {value[:40]!r}: send the next_cursor of the previous page")
    return int(value.strip())


def answers(status: int, model: str, description: str) -> dict[int, OpenAPIResponse]:
    """A route's `responses=` entry for a JSON answer described by a model of trueup.api.wire."""
    schema = {"$ref": f"#/components/schemas/{model}"}
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


def body_of(body: str | None, model: str) -> Any:
    """The request's JSON body read into the wire model named (None when there is no body or it is null).

    The resolver has already checked that the body is UTF-8 JSON of a sane size (trueup.api.resolver)."""
    if not body:
        return None
    document = json.loads(body)
    if document is None:
        return None
    from pydantic import ValidationError

    from trueup.api import wire

    try:
        parsed: BaseModel = getattr(wire, model).model_validate(document)
    except ValidationError as exc:
        raise InvalidRequest([_problem(error) for error in exc.errors()]) from None
    return parsed


def _problem(error: Mapping[str, Any]) -> str:
    where = ".".join(["body", *(str(p) for p in error.get("loc", ()))])
    return f"{where}: {error.get('msg') or error.get('type', 'invalid')}"

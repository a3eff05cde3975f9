"""Routes: /decisions, what an admin decided about a client's gap (on the snapshot function: a decision
is made on the latest snapshot's row)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import InvalidRequest, Request, answers, body_of, if_match_version, versioned
from trueup.api.identity import caller_of

router = APIGatewayHttpRouter()


REQUESTS = {
    "PUT /decisions/{coverage}/{key}": Request(body="DecisionRequest"),
}


@router.get(
    "/decisions",
    summary="Every decision on a client's gap, with its version",
    tags=["decisions"],
    responses=answers(200, "DecisionList", "The decisions"),
    compress=True,
)
def list_decisions() -> dict[str, Any]:
    from trueup.services import decisions

    return {"items": decisions.list_decisions()}


@router.get(
    "/decisions/<coverage>/<key>",
    summary="One client's decision in one coverage (ETag: its version)",
    tags=["decisions"],
    responses={**answers(200, "DecisionOut", "The decision"), 404: {"description": "No decision"}},
)
def get_decision(coverage: str, key: str) -> Response[str]:
    from trueup.services import decisions

    return versioned(decisions.get_decision(coverage, key))


@router.put(
    "/decisions/<coverage>/<key>",
    summary="Decide on a client's gap: will_bill, will_adjust, dismissed or muted, with a reason",
    description="`key`: the row's Pax8 company id, or the RMM organization id of an unmapped organization. "
    "Made on the latest snapshot's row (an under-licensed, over-licensed or unmapped one), whose figures "
    "it keeps. With If-Match (the ETag a GET gave), a stale version is 412 and changes nothing; without, "
    "a write that lost a race with another is 409.",
    tags=["decisions"],
    responses={
        **answers(200, "DecisionOut", "The decision as recorded (ETag: its version)"),
        404: {"description": "No such coverage or row in the latest snapshot"},
        409: {"description": "A matched row, or another write won a race"},
        412: {"description": "If-Match names a version that is no longer the stored one"},
    },
)
def put_decision(coverage: str, key: str) -> Response[str]:
    from trueup.services import decisions

    event = router.current_event
    request = body_of(event.body, "DecisionRequest")
    if request is None:
        raise InvalidRequest(['body: required, such as {"kind": "dismissed", "reason": "flat-fee contract"}'])
    by = caller_of(event.raw_event).actor()
    recorded = decisions.record_decision(
        coverage,
        key,
        request.model_dump(),
        by,
        if_match_version(event.headers.get("if-match")),
    )
    return versioned(recorded)


@router.delete(
    "/decisions/<coverage>/<key>",
    summary="Remove a decision (the row is undecided from the next snapshot on)",
    tags=["decisions"],
    responses={
        204: {"description": "Removed"},
        404: {"description": "No decision"},
        409: {"description": "Another write won a race"},
        412: {"description": "If-Match names a version that is no longer the stored one"},
    },
)
def delete_decision(coverage: str, key: str) -> Response[None]:
    from trueup.services import decisions

    event = router.current_event
    by = caller_of(event.raw_event).actor()
    decisions.remove_decision(coverage, key, by, if_match_version(event.headers.get("if-match")))
    return Response(status_code=204, body=None)

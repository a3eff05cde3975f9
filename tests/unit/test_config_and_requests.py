"""The function's configuration and the API's request reading: each problem named, nothing guessed."""

from __future__ import annotations

import pytest

from trueup.api.http import InvalidRequest, QueryParam, body_of
from trueup.config import ConfigurationError, read_config

NEEDED = {"TRUEUP_TABLE": "t", "TRUEUP_BUCKET": "b", "TRUEUP_EVENT_BUS": "e"}


def test_the_configuration_reads_template_variables_with_their_defaults() -> None:
    settings = read_config({**NEEDED, "AWS_DEFAULT_REGION": "eu-west-1", "EXPORT_LINK_SECONDS": "60"})
    assert (settings.table, settings.bucket, settings.event_bus) == ("t", "b", "e")
    assert settings.region == "eu-west-1" and settings.export_link_seconds == 60
    assert settings.sign_in == "oidc" and settings.role_claim == "roles" and settings.s3_endpoint_url is None


def test_the_first_variable_set_wins_and_an_empty_one_counts_as_unset() -> None:
    settings = read_config({**NEEDED, "AWS_REGION": "", "AWS_DEFAULT_REGION": "eu-west-2"})
    assert settings.region == "eu-west-2"
    both = read_config({**NEEDED, "AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-west-2"})
    assert both.region == "ap-south-1"


def test_every_problem_of_the_environment_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as raised:
        read_config({"TRUEUP_TABLE": "", "EXPORT_LINK_SECONDS": "604801", "TRUEUP_SIGN_IN": "none"})
    assert str(raised.value) == (
        "trueup is not configured: TRUEUP_TABLE not set; TRUEUP_BUCKET not set; TRUEUP_EVENT_BUS not set; "
        "EXPORT_LINK_SECONDS: must be between 1 and 604800, got 604801; "
        "TRUEUP_SIGN_IN: must be oidc or off, got 'none'"
    )
    with pytest.raises(ConfigurationError, match="EXPORT_LINK_SECONDS: must be a whole number"):
        read_config({**NEEDED, "EXPORT_LINK_SECONDS": "15m"})


LIMIT = QueryParam("limit", "how many", integer=True, default=20, minimum=1, maximum=100)


@pytest.mark.parametrize(
    ("query", "expected"),
    [(None, 20), ({}, 20), ({"limit": "1"}, 1), ({"limit": " 100 "}, 100), ({"other": "x"}, 20)],
)
def test_an_integer_query_parameter_is_read_within_its_bounds(
    query: dict[str, str] | None, expected: int
) -> None:
    assert LIMIT.read(query) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "query.limit: must be at least 1"),
        ("101", "query.limit: must be at most 100"),
        ("ten", "query.limit: must be a whole number, got 'ten'"),
        ("1.5", "query.limit: must be a whole number, got '1.5'"),
    ],
)
def test_an_integer_query_parameter_out_of_bounds_is_a_422_naming_it(value: str, problem: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        LIMIT.read({"limit": value})
    assert raised.value.problems == [problem] and str(raised.value) == f"invalid request: {problem}"


def test_a_text_query_parameter_is_read_as_sent() -> None:
    assert QueryParam("cursor", "where").read({"cursor": "abc"}) == "abc"
    assert QueryParam("cursor", "where").read(None) is None


def test_a_body_is_read_into_its_wire_model_and_every_problem_named() -> None:
    assert body_of(None, "SyncRequest") is None and body_of("null", "SyncRequest") is None
    assert body_of('{"sources": ["rmm"]}', "SyncRequest").sources == ["rmm"]
    with pytest.raises(InvalidRequest) as raised:
        body_of('{"sources": ["psa"], "other": 1}', "SyncRequest")
    problems = raised.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("body.sources.0: Input should be 'pax8', 'rmm', 'ninjaone' or 'datto'")
    assert problems[1] == "body.other: Extra inputs are not permitted"

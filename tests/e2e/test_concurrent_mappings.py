"""Concurrent mapping changes over real HTTP: an organization never ends up in two companies, the loser
gets 409 with nothing written, and changes to different organizations never get in each other's way."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.stack_process import StackProcess

TRIES = 10


def parallel(stack: StackProcess, *calls: tuple[str, str, Any]) -> list[tuple[int, Any]]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: stack.api(*call), calls))


def manual(stack: StackProcess) -> dict[str, list[str]]:
    view = stack.ok("GET", "/mappings")
    return {
        m["pax8_company_id"]: m["rmm_organization_ids"] for m in view["mappings"] if m["source"] == "manual"
    }


def test_two_companies_racing_for_one_organization_one_wins_and_the_other_gets_409(
    stack: StackProcess,
) -> None:
    view = stack.ok("GET", "/mappings")
    contested = view["mappings"][0]["rmm_organization_ids"][0]
    a, b = view["mappings"][2]["pax8_company_id"], view["mappings"][3]["pax8_company_id"]
    for _ in range(TRIES):
        answers = parallel(
            stack,
            ("PUT", f"/mappings/{a}", {"rmm_organization_ids": [contested]}),
            ("PUT", f"/mappings/{b}", {"rmm_organization_ids": [contested]}),
        )
        assert sorted(status for status, _ in answers) == [200, 409], answers
        loser = (a, b)[[status for status, _ in answers].index(409)]
        holders = [company for company, orgs in manual(stack).items() if contested in orgs]
        assert holders == [(a, b)[(a, b).index(loser) ^ 1]]
        assert loser not in manual(stack), "the loser became a manual mapping anyway"
        for company in holders:
            assert stack.api("DELETE", f"/mappings/{company}")[0] == 204


def test_concurrent_changes_of_different_organizations_all_succeed(stack: StackProcess) -> None:
    view = stack.ok("GET", "/mappings")
    pairs = [
        (view["mappings"][i + 4]["pax8_company_id"], view["mappings"][i]["rmm_organization_ids"][0])
        for i in range(4)
    ]
    for _ in range(3):
        answers = parallel(
            stack, *[("PUT", f"/mappings/{c}", {"rmm_organization_ids": [o]}) for c, o in pairs]
        )
        assert [status for status, _ in answers] == [200] * len(pairs), answers
        answers = parallel(stack, *[("DELETE", f"/mappings/{c}", None) for c, _ in pairs])
        assert [status for status, _ in answers] == [204] * len(pairs), answers

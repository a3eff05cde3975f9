"""Export Report over real HTTP: the local stack's 303 leads to a presigned download from the S3 stand-in."""

from __future__ import annotations

import csv
import io

import httpx

from tests.stack_process import StackProcess


def expected_lines(rows: list[dict[str, object]]) -> list[list[str]]:
    labels = {
        "under_licensed": "Under-licensed",
        "over_licensed": "Over-licensed",
        "matched": "Matched",
        "unmapped": "Unmapped",
    }
    return [
        [
            str(r["client"]),
            "" if r["devices"] is None else str(r["devices"]),
            "" if r["licenses"] is None else str(r["licenses"]),
            "" if r["variance"] is None else str(r["variance"]),
            labels[str(r["status"])],
        ]
        for r in rows
    ]


def test_following_the_csv_link_downloads_the_latest_snapshot_as_csv(stack: StackProcess) -> None:
    status, taken = stack.api("POST", "/snapshots")
    assert status == 201
    snapshot = stack.snapshot(taken["id"])
    # What `curl -L http://127.0.0.1:3000/snapshots/latest/export.csv` does.
    with httpx.Client(follow_redirects=True, timeout=60) as client:
        response = client.get(f"{stack.url}/snapshots/latest/export.csv")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [303]
    assert response.history[0].headers["location"].startswith("http://127.0.0.1:")  # the S3 stand-in
    assert "X-Amz-Expires=900" in response.history[0].headers["location"]
    assert response.headers["content-type"].startswith("text/csv")
    first = snapshot["coverages"][0]
    taken = snapshot["taken_at"][:10]
    assert response.headers["content-disposition"] == (
        f'attachment; filename="trueup-reconciliation-{taken}-{first["id"]}.csv"'
    )
    assert response.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(response.content[3:].decode("utf-8"), newline="")))
    assert lines[0][:5] == ["Client", "Devices", "Licenses", "Variance", "Status"]
    assert [line[:5] for line in lines[1:]] == expected_lines(first["rows"])
    assert any(line[4] == "Unmapped" and line[2] == "" for line in lines[1:])


def test_the_page_path_posts_for_a_link_and_filters_by_status(stack: StackProcess) -> None:
    status, taken = stack.api("POST", "/snapshots")
    assert status == 201
    snapshot = stack.snapshot(taken["id"])
    status, link = stack.api("POST", f"/snapshots/{snapshot['id']}/export?status=under_licensed")
    assert status == 200 and link["rows"] == snapshot["coverages"][0]["summary"]["under_licensed"]
    download = httpx.get(link["url"], timeout=60)
    assert download.status_code == 200
    lines = list(csv.reader(io.StringIO(download.content[3:].decode("utf-8"), newline="")))
    under = [r for r in snapshot["coverages"][0]["rows"] if r["status"] == "under_licensed"]
    assert [line[:5] for line in lines[1:]] == expected_lines(under)
    assert stack.api("POST", "/snapshots/20200101T000000000Z-000000/export")[0] == 404

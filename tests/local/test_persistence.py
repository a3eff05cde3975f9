from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from infra.local.persistence import SavedState, StateDirectory, StateError, StoredObject
from infra.local.stack import LocalStack
from tests.local.test_stack import config_for, request

BINARY = bytes(range(256)) * 4


def start(root: Path) -> LocalStack:
    stack = LocalStack(config_for(root), progress=lambda message: None)
    stack.start()
    return stack


def table_items(stack: LocalStack) -> list[dict[str, Any]]:
    assert stack.standin is not None and stack.resources is not None
    items: list[dict[str, Any]] = stack.standin.client("dynamodb").scan(
        TableName=stack.resources.tables["Table"], ConsistentRead=True
    )["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def bucket_objects(stack: LocalStack) -> dict[str, tuple[bytes, str, dict[str, str]]]:
    assert stack.standin is not None and stack.resources is not None
    s3, bucket = stack.standin.client("s3"), stack.resources.buckets["Bucket"]
    out = {}
    for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        got = s3.get_object(Bucket=bucket, Key=listed["Key"])
        out[listed["Key"]] = (got["Body"].read(), got["ContentType"], got["Metadata"])
    return out


def port(stack: LocalStack) -> int:
    assert stack.server is not None
    return stack.server.port


def put_item(port: int, sk: str, extra: dict[str, Any] | None = None) -> None:
    item = {"pk": {"S": "thing"}, "sk": {"S": sk}, **(extra or {})}
    body = json.dumps({"item": item}).encode()
    assert request(port, "POST", "/items", body, {"Content-Type": "application/json"})[0] == 201


def put_object(port: int, key: str, data: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type, "X-Origin": key}
    assert request(port, "PUT", f"/objects/{key}", data, headers)[0] == 201


def test_tables_and_buckets_survive_a_restart(tmp_path):
    stack = start(tmp_path)
    try:
        put_item(
            port(stack),
            "rich",
            {
                "blob": {"B": base64.b64encode(BINARY).decode()},
                "nested": {
                    "M": {
                        "n": {"N": "1.5"},
                        "l": {
                            "L": [
                                {"S": "x"},
                                {"BS": [base64.b64encode(b"\x00\x01").decode()]},
                                {"NULL": True},
                            ]
                        },
                    }
                },
                "tags": {"SS": ["a", "b"]},
            },
        )
        put_item(port(stack), "plain", {"count": {"N": "3"}})
        put_object(port(stack), "report.bin", BINARY, "application/octet-stream")
        put_object(port(stack), "note.txt", "café".encode(), "text/plain; charset=utf-8")
        items, objects = table_items(stack), bucket_objects(stack)
    finally:
        stack.stop()
    assert len(items) == 2 and len(objects) == 2

    again = start(tmp_path)
    try:
        assert table_items(again) == items
        assert bucket_objects(again) == objects
        assert objects["data/report.bin"] == (BINARY, "application/octet-stream", {"origin": "report.bin"})
    finally:
        again.stop()


def test_a_restored_object_is_not_copied_again_and_deletions_persist(tmp_path):
    stack = start(tmp_path)
    try:
        put_object(port(stack), "a.bin", b"first", "application/octet-stream")
        put_object(port(stack), "b.bin", b"second", "application/octet-stream")
    finally:
        stack.stop()
    again = start(tmp_path)
    try:
        blobs = sorted(p.name for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file())
        assert again.standin is not None and again.resources is not None
        again.standin.client("s3").delete_object(Bucket=again.resources.buckets["Bucket"], Key="data/a.bin")
        again.save_state()
        after = sorted(p.name for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file())
        assert len(blobs) == 2 and len(after) == 1 and set(after) < set(blobs)
    finally:
        again.stop()
    third = start(tmp_path)
    try:
        assert set(bucket_objects(third)) == {"data/b.bin"}
    finally:
        third.stop()


STACK_PROCESS = """
import sys, threading
from pathlib import Path
from infra.local.stack import LocalStack
from tests.local.test_stack import config_for

stack = LocalStack(config_for(Path(sys.argv[1])), progress=lambda message: None)
stack.start()
print(stack.server.port, flush=True)
threading.Event().wait()
"""


def test_an_acknowledged_write_survives_a_killed_process(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", STACK_PROCESS, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert process.stdout is not None
        served = int(process.stdout.readline())
        put_item(served, "acknowledged", {"blob": {"B": base64.b64encode(b"\x00payload").decode()}})
        put_object(served, "acknowledged.bin", BINARY, "application/octet-stream")
    finally:
        # Straight after the answers: no clean shutdown, no chance to save anything more.
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    again = start(tmp_path)
    try:
        [saved] = table_items(again)
        assert saved["sk"] == {"S": "acknowledged"} and saved["blob"] == {"B": b"\x00payload"}
        assert bucket_objects(again)["data/acknowledged.bin"][0] == BINARY
    finally:
        again.stop()


# ---------------------------------------------------------------------------- the files alone
def saved_state(directory: StateDirectory, generation: int, size: int = 64) -> SavedState:
    data = f"generation {generation}\n".encode() * size
    blob = directory.put_blob(data)
    return SavedState(
        tables={"Table": [{"pk": {"S": "gen"}, "n": {"N": str(generation)}}]},
        buckets={
            "Bucket": {f"g/{generation}": StoredObject(blob=blob, size=len(data), etag=f'"{generation}"')}
        },
    )


def test_state_round_trips_and_equal_objects_share_a_blob(tmp_path):
    directory = StateDirectory(tmp_path)
    directory.ensure()
    same = directory.put_blob(b"same bytes")
    assert directory.put_blob(b"same bytes") == same
    state = saved_state(directory, 1)
    state.buckets["Bucket"]["copy"] = StoredObject(blob=same, size=10, etag='"x"', content_type="text/plain")
    directory.commit(state)
    loaded = directory.load()
    assert loaded is not None
    assert loaded.tables == state.tables and loaded.buckets == state.buckets


def test_a_state_naming_a_missing_blob_is_reported_not_half_restored(tmp_path):
    directory = StateDirectory(tmp_path)
    directory.ensure()
    state = saved_state(directory, 1)
    directory.commit(state)
    directory.remove_blobs(state.blobs())
    with pytest.raises(StateError, match="missing blob"):
        directory.load()


SAVER = """
import sys
from pathlib import Path
from tests.local.test_persistence import saved_state
from infra.local.persistence import StateDirectory

directory = StateDirectory(Path(sys.argv[1]))
directory.ensure()
generation = int(sys.argv[2])
while True:
    generation += 1
    previous = directory.load()
    directory.commit(saved_state(directory, generation, size=20000))
    if previous is not None:
        directory.remove_blobs(previous.blobs())
    print(generation, flush=True)  # acknowledged: committed
"""


@pytest.mark.parametrize("saves_before_kill", [1, 3, 7, 12])
def test_a_process_killed_while_saving_leaves_a_readable_state(tmp_path, saves_before_kill):
    directory = StateDirectory(tmp_path)
    directory.ensure()
    directory.commit(saved_state(directory, 0))
    process = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(tmp_path), "0"],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    assert process.stdout is not None
    acknowledged = 0
    for _ in range(saves_before_kill):
        acknowledged = int(process.stdout.readline())
    # Kill at an arbitrary point of a later save: a blob half-written, the state file being replaced...
    time.sleep(0.0005 * saves_before_kill)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()

    loaded = directory.load()
    assert loaded is not None
    generation = int(loaded.tables["Table"][0]["n"]["N"])
    assert generation >= acknowledged  # nothing acknowledged is lost
    [(key, entry)] = loaded.buckets["Bucket"].items()
    assert key == f"g/{generation}"
    assert directory.read_blob(entry.blob) == f"generation {generation}\n".encode() * 20000
    directory.sweep(loaded.blobs())
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert leftovers == []
    assert {p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()} == loaded.blobs()


def test_a_state_from_an_unknown_format_is_refused_with_advice(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(StateError, match="move it away"):
        StateDirectory(tmp_path).load()

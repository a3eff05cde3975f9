"""The stand-in's write gate: which requests count as writes, and a save seeing exactly the writes it says."""

from __future__ import annotations

import threading

import pytest

from infra.local.aws_standin import WriteGate, is_saved_write


@pytest.mark.parametrize(
    ("method", "path", "target", "write"),
    [
        ("POST", "/", "DynamoDB_20120810.PutItem", True),
        ("POST", "/", "DynamoDB_20120810.TransactWriteItems", True),
        ("POST", "/", "DynamoDB_20120810.Query", False),
        ("POST", "/", "DynamoDB_20120810.Scan", False),
        ("POST", "/", "secretsmanager.GetSecretValue", False),
        ("POST", "/", "AWSEvents.PutEvents", False),  # the bus holds nothing the stack saves
        ("PUT", "/bucket/key", None, True),
        ("DELETE", "/bucket/key", None, True),
        ("POST", "/bucket/key", None, True),  # a multipart upload's start and end
        ("GET", "/bucket/key", None, False),
        ("HEAD", "/bucket/key", None, False),
        ("POST", "/", None, False),  # IAM, STS: query protocol
    ],
)
def test_only_writes_to_tables_and_buckets_count(
    method: str, path: str, target: str | None, write: bool
) -> None:
    assert is_saved_write(method, path, target) is write


def test_a_save_waits_for_writes_in_progress_and_holds_new_ones_until_it_is_done() -> None:
    gate = WriteGate()
    first_started, release_first = threading.Event(), threading.Event()
    order: list[str] = []

    def slow_write() -> None:
        with gate.writing():
            first_started.set()
            release_first.wait(10)
            order.append("first write done")

    writer = threading.Thread(target=slow_write)
    writer.start()
    assert first_started.wait(10)
    versions: list[int] = []

    def save() -> None:
        with gate.quiescent() as version:
            versions.append(version)
            order.append("save reads")
            second.start()
            assert not second_started.wait(0.2)  # held back while the save reads
            order.append("save done")

    second_started = threading.Event()

    def second_write() -> None:
        with gate.writing():
            second_started.set()
            order.append("second write")

    second = threading.Thread(target=second_write)
    saver = threading.Thread(target=save)
    saver.start()
    assert saver.is_alive()  # waiting for the first write
    release_first.set()
    for thread in (writer, saver):
        thread.join(10)
    second.join(10)
    assert order == ["first write done", "save reads", "save done", "second write"]
    assert versions == [1] and gate.version == 2

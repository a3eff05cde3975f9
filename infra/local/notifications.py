"""What the stack's SNS topics would tell people, caught locally: printed to the log and kept for
GET /_local/notifications (newest first).

Each topic of the template gets an SQS queue subscribed to it in the AWS stand-in (moto delivers a
topic's messages to its queue subscriptions as SNS does); a thread long-polls the queues. On AWS the
topic's subscribers (an e-mail address, a chat hook) get the same subject and text.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("trueup.local.notifications")
KEPT = 100  # the newest notifications GET /_local/notifications lists
_WAKE_UP = "trueup-local-wake-up"


class NotificationInbox:
    def __init__(
        self,
        client: Callable[[str], Any],
        topics: Mapping[str, str],
        show: Callable[[str], None],
        wait_seconds: int = 5,
    ) -> None:
        """`client(service)` gives a stand-in client; `topics` maps logical ids to topic ARNs;
        `show` prints a line to the stack's output."""
        self._client = client
        self._topics = dict(topics)
        self._show = show
        self._wait_seconds = wait_seconds
        self._queue_url: str | None = None
        self._received: deque[dict[str, Any]] = deque(maxlen=KEPT)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self._topics:
            return
        sqs, sns = self._client("sqs"), self._client("sns")
        self._queue_url = sqs.create_queue(QueueName="trueup-local-notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for topic in self._topics.values():
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._poll, name="notifications", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._queue_url is not None:
            with contextlib.suppress(Exception):
                self._client("sqs").send_message(QueueUrl=self._queue_url, MessageBody=_WAKE_UP)
        if self._thread is not None:
            self._thread.join(timeout=self._wait_seconds + 5)
            self._thread = None

    def listed(self) -> list[dict[str, Any]]:
        """The notifications received, newest first: topic, subject, text, received_at."""
        with self._lock:
            return list(reversed(self._received))

    def _poll(self) -> None:
        sqs = self._client("sqs")
        while not self._stopping.is_set():
            try:
                answer = sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self._wait_seconds
                )
            except Exception as exc:
                if self._stopping.is_set():
                    return
                log.error("cannot read the notifications queue: %s", exc)
                self._stopping.wait(1.0)
                continue
            for message in answer.get("Messages", []):
                if message["Body"] != _WAKE_UP:
                    self._keep(message["Body"])
                with contextlib.suppress(Exception):
                    sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _keep(self, body: str) -> None:
        try:
            envelope = json.loads(body)  # SNS's envelope around the message
        except ValueError:
            envelope = {"Message": body}
        topic = envelope.get("TopicArn", "")
        notification = {
            "topic": next((name for name, arn in self._topics.items() if arn == topic), topic),
            "subject": envelope.get("Subject"),
            "text": envelope.get("Message", ""),
            "received_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        # Printed before it is listed: whoever sees it listed finds it in the output too.
        self._show(f"notification: {notification['subject']}\n{notification['text']}")
        with self._lock:
            self._received.append(notification)

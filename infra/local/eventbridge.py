"""Event delivery as EventBridge does it: the template's rules, on the stand-in's bus, to functions.

Handlers publish with PutEvents to the moto bus. For each EventBridgeRule in the template the
stack creates that rule (same bus, same pattern) with an SQS queue as its target, so moto does the
pattern matching; background threads long-poll the queues and invoke the rule's function with
the event as EventBridge hands it to Lambda. A failed invocation is retried twice more, as Lambda
retries asynchronous invocations (with short local delays instead of minutes), then dropped with
an error in the log (the deployed function would send it to its on-failure destination).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.local.aws_standin import ACCOUNT_ID, STACK_NAME, AwsStandIn, function_name
from infra.local.runtime import Outcome
from infra.local.template import EventRule, Resolver

log = logging.getLogger("infra.local.events")

# The fields of an event as EventBridge delivers it to Lambda (moto adds bookkeeping of its own).
EVENT_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
DEFAULT_RETRY_DELAYS = (1.0, 2.0)
_WAKE_UP = '{"local-stack": "stopping"}'

# invoke(function logical id, event) -> outcome
Invoke = Callable[[str, dict[str, Any]], Outcome]


@dataclass(frozen=True)
class Subscription:
    rule: EventRule
    rule_name: str
    bus: str
    queue_url: str


def lambda_event(message_body: str) -> dict[str, Any]:
    """The EventBridge event in an SQS message from a rule target, as Lambda would receive it."""
    event = json.loads(message_body)
    if not isinstance(event, dict):
        raise ValueError("the message is not an EventBridge event")
    # moto's SQS delivery loses the account on the way; EventBridge always sends it.
    event.setdefault("account", ACCOUNT_ID)
    return {name: event[name] for name in EVENT_FIELDS if name in event}


class EventDelivery:
    def __init__(
        self,
        standin: AwsStandIn,
        rules: Sequence[EventRule],
        resolver: Resolver,
        invoke: Invoke,
        *,
        timeouts: Mapping[str, int],
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        wait_seconds: int = 1,
        concurrency: int = 8,
        duplicate: bool = False,
        max_retries: Mapping[str, int] | None = None,
        on_failure: Mapping[str, str] | None = None,
    ) -> None:
        """`duplicate`: deliver every event twice, as EventBridge may (at least once), for tests.
        `max_retries`: a function's EventInvokeConfig retries (at most as many as `retry_delays`);
        `on_failure`: the queue URL a function's invocations that failed after them go to."""
        self._standin = standin
        self._rules = list(rules)
        self._resolver = resolver
        self._invoke = invoke
        self._timeouts = dict(timeouts)
        self._retry_delays = tuple(retry_delays)
        self._wait_seconds = wait_seconds
        self._concurrency = concurrency
        self._duplicate = duplicate
        self._max_retries = dict(max_retries or {})
        self._on_failure = dict(on_failure or {})
        self._stopping = threading.Event()
        self._subscriptions: list[Subscription] = []
        self._threads: list[threading.Thread] = []
        self._executor: ThreadPoolExecutor | None = None

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions)

    def create(self) -> None:
        """Create each rule on its bus with a queue as its only target."""
        events, sqs = self._standin.client("events"), self._standin.client("sqs")
        for rule in self._rules:
            where = f"{rule.function}.Events.{rule.event}"
            bus = "default" if rule.bus is None else self._resolver.resolve_string(rule.bus, where)
            name = f"{STACK_NAME}-{rule.function}-{rule.event}"[:64]
            # The message stays invisible for as long as the function may take, with its retries.
            timeout = self._timeouts.get(rule.function, 900)
            visibility = min(
                43200, int(timeout * (1 + len(self._retry_delays)) + sum(self._retry_delays) + 60)
            )
            queue_url = sqs.create_queue(
                QueueName=name[:80], Attributes={"VisibilityTimeout": str(visibility)}
            )["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            events.put_rule(
                Name=name, EventBusName=bus, EventPattern=json.dumps(rule.pattern), State="ENABLED"
            )
            events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "local-queue", "Arn": queue_arn}])
            self._subscriptions.append(Subscription(rule, name, bus, queue_url))

    def start(self) -> None:
        self._stopping.clear()
        self._executor = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="event")
        for subscription in self._subscriptions:
            thread = threading.Thread(
                target=self._poll, args=(subscription,), name=f"poll-{subscription.rule_name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        sqs = self._standin.client("sqs")
        for subscription in self._subscriptions:
            # Wakes the poller from its long poll at once; it sees the stop and leaves the message.
            with contextlib.suppress(Exception):
                sqs.send_message(QueueUrl=subscription.queue_url, MessageBody=_WAKE_UP)
        for thread in self._threads:
            thread.join(timeout=self._wait_seconds + 5)
        self._threads.clear()
        if self._executor is not None:
            # Deliveries in flight end with the workers the runtime stops next.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _poll(self, subscription: Subscription) -> None:
        sqs = self._standin.client("sqs")
        while not self._stopping.is_set():
            try:
                answer = sqs.receive_message(
                    QueueUrl=subscription.queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self._wait_seconds,
                )
            except Exception as exc:
                if self._stopping.is_set():
                    return
                log.error("cannot read the queue of rule %s: %s", subscription.rule_name, exc)
                self._stopping.wait(1.0)
                continue
            executor = self._executor
            for message in answer.get("Messages", []):
                if executor is None or self._stopping.is_set():
                    return
                try:
                    executor.submit(self._deliver, subscription, message)
                except RuntimeError:  # the executor shut down under us: stopping
                    return

    def _deliver(self, subscription: Subscription, message: Mapping[str, Any]) -> None:
        rule = subscription.rule
        try:
            event = lambda_event(message["Body"])
        except (ValueError, TypeError) as exc:
            log.error("dropping an unreadable event on rule %s: %s", subscription.rule_name, exc)
            self._delete(subscription, message)
            return
        label = f"{event.get('detail-type', '?')} -> {rule.function}"
        for copy in range(2 if self._duplicate else 1):
            if not self._deliver_once(rule, event, f"{label} (again)" if copy else label):
                return  # stopping: the message stays for the next start
        self._delete(subscription, message)

    def _deliver_once(self, rule: EventRule, event: dict[str, Any], label: str) -> bool:
        """One delivery, with the retries Lambda makes of an asynchronous invocation; False when the
        stack is stopping. One that failed after them goes to the function's on-failure destination."""
        retries = min(self._max_retries.get(rule.function, len(self._retry_delays)), len(self._retry_delays))
        attempts = 1 + retries
        for attempt in range(1, attempts + 1):
            try:
                outcome = self._invoke(rule.function, event)
            except Exception:
                if self._stopping.is_set():
                    return False
                log.exception("event %s: the local stack failed to invoke the function", label)
                outcome = None
            if outcome is not None and outcome.ok:
                log.info("event %s: ok %.0f ms", label, outcome.duration_ms)
                return True
            if self._stopping.is_set():
                return False  # shutting down: the invocation was cut short, not failed
            problem = outcome.describe() if outcome is not None else "not invoked"
            if attempt < attempts:
                delay = self._retry_delays[attempt - 1]
                log.warning(
                    "event %s: attempt %d failed (%s); retrying in %.0f s", label, attempt, problem, delay
                )
                if self._stopping.wait(delay):
                    return False
            else:
                destination = self._on_failure.get(rule.function)
                if destination is None:
                    log.error("event %s: dropped after %d attempts (%s)", label, attempts, problem)
                else:
                    log.error(
                        "event %s: failed %d times (%s); recorded in its on-failure destination",
                        label,
                        attempts,
                        problem,
                    )
                    self._record_failure(destination, rule.function, event, attempts, outcome)
        return True

    def _record_failure(
        self, queue_url: str, function: str, event: dict[str, Any], attempts: int, outcome: Any
    ) -> None:
        """What Lambda sends an on-failure destination: the event, and how the function failed."""
        error = (outcome.error if outcome is not None else None) or {"errorMessage": "not invoked"}
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function_name(function)}",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": error,
        }
        try:
            self._standin.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
        except Exception as exc:
            log.error("cannot record a failed invocation of %s: %s", function, exc)

    def _delete(self, subscription: Subscription, message: Mapping[str, Any]) -> None:
        try:
            self._standin.client("sqs").delete_message(
                QueueUrl=subscription.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except Exception as exc:
            if not self._stopping.is_set():
                log.error("cannot delete a delivered event from %s: %s", subscription.rule_name, exc)

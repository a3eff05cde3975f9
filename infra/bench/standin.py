"""Helper process: the AWS stand-in (moto in server mode) holding what template.yaml declares.

    python -m infra.bench.standin --parameters '{"Pax8ApiUrl": ...}' --ready FILE

The local stack's own code creates the tables, bucket, bus and secrets from the template
(`infra.local.aws_standin.create_resources`); the secrets hold the demo upstreams' credentials.
Each EventBridge rule of the template gets an SQS queue as its target, so the benchmark receives
the "Sync Requested" events exactly as the bus routes them. The ready file gives the endpoint,
each function's environment as Lambda would set it from the template, and the rules' queues.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra.bench.processes import announce_ready, serve_until_stopped
from infra.demo.servers import DEFAULT_NINJAONE_CREDENTIALS, DEFAULT_PAX8_CREDENTIALS
from infra.local.aws_standin import AwsStandIn, create_resources, function_name
from infra.local.template import StackTemplate, resolve_environment

# The template's secrets, by logical id, and the demo credentials they hold (published demo values).
SECRETS = {"Pax8Secret": DEFAULT_PAX8_CREDENTIALS, "NinjaOneSecret": DEFAULT_NINJAONE_CREDENTIALS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.standin")
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--parameters", required=True, help="template parameters as a JSON object")
    parser.add_argument("--ready", type=Path, required=True, help="where to write the ready JSON")
    args = parser.parse_args(argv)

    template = StackTemplate.load(args.template)
    standin = AwsStandIn()
    standin.start()
    try:
        secret_values = {
            logical_id: json.dumps({"client_id": client_id, "client_secret": client_secret})
            for logical_id, (client_id, client_secret) in SECRETS.items()
        }
        resources = create_resources(template, standin, secret_values, json.loads(args.parameters))
        resolver = resources.resolver()
        functions = {
            logical_id: {
                "name": function_name(logical_id),
                "code_uri": str(spec.code_uri),
                "handler": spec.handler,
                "timeout": spec.timeout,
                "memory_mb": spec.memory_mb,
                "environment": resolve_environment(spec, resolver),
            }
            for logical_id, spec in template.functions.items()
        }
        events, sqs = standin.client("events"), standin.client("sqs")
        queues = []
        for rule in template.rules:
            where = f"{rule.function}.Events.{rule.event}"
            bus = "default" if rule.bus is None else resolver.resolve_string(rule.bus, where)
            name = f"bench-{rule.function}-{rule.event}"[:64]
            queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(rule.pattern))
            events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "bench", "Arn": queue_arn}])
            queues.append({"function": rule.function, "queue_url": queue_url})
        announce_ready(
            args.ready,
            {
                "endpoint_url": standin.endpoint_url,
                # The only credentials it accepts (made for this run), for the benchmark's workers.
                "credentials": [standin.credentials.access_key_id, standin.credentials.secret_access_key],
                "buckets": resources.buckets,
                "functions": functions,
                "queues": queues,
            },
        )
        serve_until_stopped()
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

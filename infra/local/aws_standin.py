"""The AWS stand-in: moto in server mode, with the template's tables, bucket, bus and secrets in it.

moto's server runs on a thread of this process; handlers in their worker processes reach it over HTTP
through AWS_ENDPOINT_URL. Every request passes a `WriteGate`, which counts the writes to tables and
buckets so that the stack can save them before anyone is shown what they wrote
(`infra.local.persistence`).

`create_resources` creates what the template declares from the
template's own definitions (key schema, indexes, billing mode, versioning, bus name...), so the
local stack cannot drift from what deploys, and returns the local physical names that `!Ref` and
`!GetAtt` resolve to.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import logging
import secrets
import string
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from infra.local.template import (
    BUCKET,
    EVENT_BUS,
    HTTP_API,
    QUEUE,
    SECRET,
    TABLE,
    TOPIC,
    Resolver,
    StackTemplate,
    TemplateError,
)

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
STACK_NAME = "trueup-local"

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=32,
)


log = logging.getLogger("infra.local.aws_standin")

_running_lock = threading.Lock()
_running: AwsStandIn | None = None

# DynamoDB operations that change what a table holds (X-Amz-Target "DynamoDB_20120810.<operation>").
_TABLE_WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
        "CreateTable",
        "DeleteTable",
        "UpdateTable",
        "RestoreTableFromBackup",
        "ImportTable",
    }
)


def is_saved_write(method: str, path: str, target: str | None) -> bool:
    """Whether a request to the stand-in may change what a table or a bucket holds (what the stack saves).

    JSON-protocol services name their operation in X-Amz-Target: only DynamoDB's writes count. S3
    addresses a bucket in the path: any PUT, DELETE or POST there counts (an upload, a copy, a
    delete, a multipart step). Query-protocol services (IAM, STS) POST to "/" and hold nothing saved."""
    if target:
        service, _, operation = target.partition(".")
        return service.startswith("DynamoDB_") and operation in _TABLE_WRITES
    return method in ("PUT", "DELETE") or (method == "POST" and path not in ("", "/"))


@dataclass(frozen=True)
class StandInCredentials:
    """The only credentials the stand-in accepts: made afresh for each run, handed to the workers only."""

    access_key_id: str
    secret_access_key: str

    @classmethod
    def generate(cls) -> StandInCredentials:
        alphabet = string.ascii_uppercase + string.digits
        key_id = "AKIALOCAL" + "".join(secrets.choice(alphabet) for _ in range(11))
        return cls(key_id, secrets.token_urlsafe(30))

    def __repr__(self) -> str:  # never the secret, in a log or a traceback
        return f"StandInCredentials(access_key_id={self.access_key_id!r})"


class SignatureCheck:
    """Every request to the stand-in must be signed (SigV4) with the run's credentials, as AWS requires.

    moto accepts any credentials, and its own IAM enforcement cannot read presigned URLs, so the check
    is done here, with botocore's SigV4 signer: the request's canonical form is signed again with the
    run's secret and the signatures compared. A header-signed request and a presigned URL (which must
    also not have expired) are both checked; anything else, moto's own /moto-api/ included, is a 403."""

    def __init__(self, credentials: StandInCredentials) -> None:
        self._credentials = Credentials(credentials.access_key_id, credentials.secret_access_key)

    def problem(self, environ: dict[str, Any], now: datetime | None = None) -> str | None:
        """What is wrong with the request's signature, or None when it is the run's own."""
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return "moto's own API is not served by the local stack"
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if "X-Amz-Signature" in query:
            return self._presigned_problem(environ, {k: v[-1] for k, v in query.items()}, now)
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            return "the request is not signed with AWS Signature Version 4"
        fields = dict(
            part.strip().split("=", 1) for part in authorization[len("AWS4-HMAC-SHA256 ") :].split(",")
        )
        scope = fields.get("Credential", "").split("/")
        signed = [h for h in fields.get("SignedHeaders", "").split(";") if h]
        timestamp = environ.get("HTTP_X_AMZ_DATE", "")
        if len(scope) != 5 or not signed or not timestamp:
            return "the request's signature is malformed"
        if scope[0] != self._credentials.access_key:
            return "the access key is not this run's (the local stack makes new credentials each run)"
        headers = {name: environ.get(_environ_name(name), "") for name in signed}
        # S3 signs the payload's hash it sends in x-amz-content-sha256; the other services, the body.
        body = b"" if "x-amz-content-sha256" in headers else _read_body(environ)
        request = AWSRequest(
            method=environ.get("REQUEST_METHOD", "GET"),
            url=f"http://{environ.get('HTTP_HOST', '')}{_raw_uri(environ)}",
            headers=headers,
            data=body,
        )
        request.context["timestamp"] = timestamp
        signer_class = S3SigV4Auth if scope[3] == "s3" else SigV4Auth
        signer = signer_class(self._credentials, scope[3], scope[2])
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        if not hmac.compare_digest(expected, fields.get("Signature", "")):
            return "the signature does not match: the request was not signed with this run's credentials"
        return None

    def _presigned_problem(
        self, environ: dict[str, Any], query: dict[str, str], now: datetime | None
    ) -> str | None:
        scope = query.get("X-Amz-Credential", "").split("/")
        timestamp = query.get("X-Amz-Date", "")
        if len(scope) != 5 or scope[0] != self._credentials.access_key:
            return "the link was not signed with this run's credentials"
        try:
            signed_at = datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            lifetime = int(query.get("X-Amz-Expires", ""))
        except ValueError:
            return "the link's date or lifetime is malformed"
        if (now or datetime.now(UTC)) > signed_at + timedelta(seconds=lifetime):
            return "the link has expired"
        signed = [h for h in query.get("X-Amz-SignedHeaders", "").split(";") if h]
        path, _, raw_query = _raw_uri(environ).partition("?")
        # The query as sent (its encoding is part of what was signed), without the signature itself.
        unsigned = "&".join(p for p in raw_query.split("&") if not p.startswith("X-Amz-Signature="))
        request = AWSRequest(
            method=environ.get("REQUEST_METHOD", "GET"),
            url=f"http://{environ.get('HTTP_HOST', '')}{path}?{unsigned}",
            headers={name: environ.get(_environ_name(name), "") for name in signed},
        )
        request.context["timestamp"] = timestamp
        # A presigned link signs no payload (UNSIGNED-PAYLOAD), which this signer says.
        signer = S3SigV4QueryAuth(self._credentials, scope[3], scope[2], expires=lifetime)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, query.get("X-Amz-Signature", "")):
            return "the link's signature does not match"
        return None


def _raw_uri(environ: dict[str, Any]) -> str:
    """The path and query as the client sent them (werkzeug keeps them), encoding and all."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    query = environ.get("QUERY_STRING", "")
    return str(environ.get("PATH_INFO", "/")) + (f"?{query}" if query else "")


def _environ_name(header: str) -> str:
    name = header.upper().replace("-", "_")
    return name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request's body, put back for moto to read again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _refused(environ: dict[str, Any], start_response: Any, problem: str) -> list[bytes]:
    """A 403 in the form the service's clients read: JSON for X-Amz-Target services, XML for S3."""
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": "UnrecognizedClientException", "message": problem}).encode()
        content_type = "application/x-amz-json-1.0"
    else:
        body = f"<Error><Code>AccessDenied</Code><Message>{escape(problem)}</Message></Error>".encode()
        content_type = "application/xml"
    start_response("403 Forbidden", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class WriteGate:
    """Counts the writes the stand-in serves, and lets a save hold new writes back while it reads.

    `version` is the number of writes begun. `quiescent()` waits until no write is in progress and keeps
    new ones waiting until it exits: what is read inside it holds every write up to the version it
    yields, and none after. Reads are never held."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._in_progress = 0
        self._held = False
        self._version = 0

    @property
    def version(self) -> int:
        with self._condition:
            return self._version

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._condition:
            while self._held:
                self._condition.wait()
            self._in_progress += 1
            self._version += 1
        try:
            yield
        finally:
            with self._condition:
                self._in_progress -= 1
                self._condition.notify_all()

    @contextlib.contextmanager
    def quiescent(self) -> Iterator[int]:
        with self._condition:
            while self._held:
                self._condition.wait()
            self._held = True
            while self._in_progress:
                self._condition.wait()
            version = self._version
        try:
            yield version
        finally:
            with self._condition:
                self._held = False
                self._condition.notify_all()

    def wsgi(self, app: Any) -> Any:
        """moto's WSGI application, with every write counted (and held while a save reads)."""

        def gated(environ: dict[str, Any], start_response: Any) -> Any:
            write = is_saved_write(
                environ.get("REQUEST_METHOD", "GET"),
                environ.get("PATH_INFO", "/"),
                environ.get("HTTP_X_AMZ_TARGET"),
            )
            if not write:
                return app(environ, start_response)
            with self.writing():
                # moto answers with a finished body: the write is done once the list is built.
                return list(app(environ, start_response))

        return gated


class _RequestHandler(MotoRequestHandler):
    disable_nagle_algorithm = True  # or every small answer waits 40 ms for the client's ACK


class AwsStandIn:
    """moto's server on 127.0.0.1 (port 0: any free port), and boto3 clients for the stack's own calls."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self.gate = WriteGate()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._endpoint: str | None = None
        self.credentials = StandInCredentials.generate()
        self._signatures = SignatureCheck(self.credentials)
        self._session = boto3.session.Session(
            aws_access_key_id=self.credentials.access_key_id,
            aws_secret_access_key=self.credentials.secret_access_key,
            region_name=REGION,
        )
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    def _signed_only(self, app: Any) -> Any:
        def signed(environ: dict[str, Any], start_response: Any) -> Any:
            problem = self._signatures.problem(environ)
            if problem is not None:
                log.warning("refused a request to the AWS stand-in: %s", problem)
                return _refused(environ, start_response, problem)
            return app(environ, start_response)

        return signed

    def start(self) -> None:
        global _running
        with _running_lock:
            if _running is not None:
                # moto keeps its state in module globals: two stand-ins in one process would share it.
                raise RuntimeError(f"an AWS stand-in already runs in this process ({_running.endpoint_url})")
            _running = self
        try:
            # werkzeug logs every request moto serves at INFO; the gateway logs what matters.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            # Start empty even if an earlier stand-in of this process (a test) left state behind.
            moto_api_backend.reset()
            app = self._signed_only(self.gate.wsgi(DomainDispatcherApplication(create_backend_app)))
            self._server = make_server(
                self._host, self._port, app, threaded=True, request_handler=_RequestHandler
            )
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="aws-stand-in", daemon=True
            )
            self._thread.start()
            host, port = self._server.server_address[:2]
            self._endpoint = f"http://{host!s}:{port}"
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        global _running
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._endpoint = None
        with _running_lock:
            if _running is self:
                _running = None

    @property
    def endpoint_url(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("the AWS stand-in is not running; call start() first")
        return self._endpoint

    def client(self, service: str) -> Any:
        # boto3 clients are thread-safe once made; making them from one session is not.
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, endpoint_url=self.endpoint_url, config=_CLIENT_CONFIG
                )
            return self._clients[service]


@dataclass
class LocalResources:
    """What the stand-in holds for the template, by logical id, and how intrinsics resolve to it."""

    tables: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    buses: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    topics: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    queues: dict[str, str] = field(default_factory=dict)  # ARN -> URL
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    conditions: dict[str, bool] = field(default_factory=dict)

    def resolver(self) -> Resolver:
        return Resolver(self.refs, self.attributes, self.conditions)


def pseudo_parameters() -> dict[str, str]:
    return {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::StackName": STACK_NAME,
        "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }


def function_name(logical_id: str) -> str:
    return f"{STACK_NAME}-{logical_id}"


def create_resources(
    template: StackTemplate,
    standin: AwsStandIn,
    secret_values: Mapping[str, str],
    parameters: Mapping[str, str] | None = None,
) -> LocalResources:
    """Create the template's tables, buckets, buses and secrets in the stand-in.

    `secret_values` gives a secret's value by logical id; a secret without one gets what its
    GenerateSecretString would make (a placeholder the handlers report as unset credentials).
    """
    out = LocalResources(conditions=dict(template.conditions))
    out.refs.update(pseudo_parameters())
    out.refs.update(template.parameters)
    out.refs.update(parameters or {})
    for logical_id in template.functions:
        name = function_name(logical_id)
        out.refs[logical_id] = name
        out.attributes[(logical_id, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    # Names may use parameters and pseudo parameters, not other resources.
    names = Resolver(dict(out.refs))

    for resource in template.of_type(TABLE):
        where = f"{template.path}: {resource.logical_id}"
        props = names.resolve(dict(resource.properties), where)
        name = props.get("TableName") or f"{STACK_NAME}-{resource.logical_id}"
        standin.client("dynamodb").create_table(**_table_arguments(name, props, where))
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            standin.client("dynamodb").update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        out.tables[resource.logical_id] = out.refs[resource.logical_id] = name
        arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
        out.attributes[(resource.logical_id, "Arn")] = arn

    for resource in template.of_type(BUCKET):
        where = f"{template.path}: {resource.logical_id}"
        # Only what the stand-in applies: a bucket's logging or lifecycle may name other resources.
        used = ("BucketName", "VersioningConfiguration")
        props = names.resolve({k: v for k, v in resource.properties.items() if k in used}, where)
        name = props.get("BucketName") or f"{STACK_NAME}-{resource.logical_id}".lower()
        s3 = standin.client("s3")
        s3.create_bucket(Bucket=name)
        status = (props.get("VersioningConfiguration") or {}).get("Status")
        if status:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
        out.buckets[resource.logical_id] = out.refs[resource.logical_id] = name
        out.attributes[(resource.logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        out.attributes[(resource.logical_id, "DomainName")] = f"{name}.s3.amazonaws.com"

    for resource in template.of_type(EVENT_BUS):
        where = f"{template.path}: {resource.logical_id}"
        props = names.resolve(dict(resource.properties), where)
        name = props.get("Name")
        if not isinstance(name, str) or not name:
            raise TemplateError(f"{where}: an event bus needs a Name")
        answer = standin.client("events").create_event_bus(Name=name)
        out.buses[resource.logical_id] = out.refs[resource.logical_id] = name
        out.attributes[(resource.logical_id, "Arn")] = answer["EventBusArn"]
        out.attributes[(resource.logical_id, "Name")] = name

    for resource in template.of_type(SECRET):
        where = f"{template.path}: {resource.logical_id}"
        props = names.resolve(dict(resource.properties), where)
        name = props.get("Name") or f"{STACK_NAME}/{resource.logical_id}"
        value = secret_values.get(resource.logical_id)
        if value is None:
            value = _generated_secret(props)
        answer = standin.client("secretsmanager").create_secret(Name=name, SecretString=value)
        out.secrets[resource.logical_id] = out.refs[resource.logical_id] = answer["ARN"]
        out.attributes[(resource.logical_id, "Id")] = answer["ARN"]

    for resource in template.of_type(TOPIC):
        name = f"{STACK_NAME}-{resource.logical_id}"
        arn = standin.client("sns").create_topic(Name=name)["TopicArn"]
        out.topics[resource.logical_id] = out.refs[resource.logical_id] = arn
        out.attributes[(resource.logical_id, "TopicArn")] = arn
        out.attributes[(resource.logical_id, "TopicName")] = name

    for resource in template.of_type(QUEUE):
        name = f"{STACK_NAME}-{resource.logical_id}"
        sqs = standin.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        out.refs[resource.logical_id] = out.queues[arn] = url
        out.attributes[(resource.logical_id, "Arn")] = arn
        out.attributes[(resource.logical_id, "QueueName")] = name
        out.attributes[(resource.logical_id, "QueueUrl")] = url

    # An HTTP API's id (what `!Ref` gives, e.g. in a URL the stack overrides with its own address).
    for resource in template.of_type(HTTP_API):
        out.refs[resource.logical_id] = "local"
    return out


def _table_arguments(name: str, props: Mapping[str, Any], where: str) -> dict[str, Any]:
    try:
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
        }
    except KeyError as exc:
        raise TemplateError(f"{where}: a table needs {exc.args[0]}") from exc
    billing = props.get("BillingMode", "PROVISIONED")
    args["BillingMode"] = billing
    throughput = props.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    if billing != "PAY_PER_REQUEST":
        args["ProvisionedThroughput"] = throughput
    indexes = []
    for index in props.get("GlobalSecondaryIndexes") or []:
        entry = {k: index[k] for k in ("IndexName", "KeySchema", "Projection") if k in index}
        if billing != "PAY_PER_REQUEST":
            entry["ProvisionedThroughput"] = index.get("ProvisionedThroughput") or throughput
        indexes.append(entry)
    if indexes:
        args["GlobalSecondaryIndexes"] = indexes
    local = [
        {k: index[k] for k in ("IndexName", "KeySchema", "Projection") if k in index}
        for index in props.get("LocalSecondaryIndexes") or []
    ]
    if local:
        args["LocalSecondaryIndexes"] = local
    stream = props.get("StreamSpecification")
    if stream:
        args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return args


def _generated_secret(props: Mapping[str, Any]) -> str:
    if isinstance(props.get("SecretString"), str):
        return str(props["SecretString"])
    generate = props.get("GenerateSecretString") or {}
    template = generate.get("SecretStringTemplate")
    key = generate.get("GenerateStringKey")
    if isinstance(template, str) and isinstance(key, str):
        document = json.loads(template)
        document[key] = secrets.token_urlsafe(24)
        return json.dumps(document)
    return secrets.token_urlsafe(24)

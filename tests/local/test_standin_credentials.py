"""The AWS stand-in serves only requests signed with the credentials it made for this run.

It holds the vendors' secrets: a local process (or a web page) that knows its port and sends moto's
usual dummy credentials must get nothing, and moto's own /moto-api/ (which can dump or wipe
everything) is not served at all.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.local import aws_standin
from infra.local.aws_standin import REGION, AwsStandIn


@pytest.fixture(scope="module")
def standin() -> Iterator[AwsStandIn]:
    running = AwsStandIn()
    running.start()
    running.client("secretsmanager").create_secret(
        Name="trueup/pax8", SecretString='{"client_secret": "s3cr3t"}'
    )
    running.client("s3").create_bucket(Bucket="trueup-exports")
    running.client("s3").put_object(Bucket="trueup-exports", Key="exports/a.csv", Body=b"Client\n")
    try:
        yield running
    finally:
        running.stop()


def client(standin: AwsStandIn, service: str, key_id: str, secret: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=REGION
    )
    return session.client(service, endpoint_url=standin.endpoint_url)


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_runs_own_credentials_are_served(standin: AwsStandIn) -> None:
    value = standin.client("secretsmanager").get_secret_value(SecretId="trueup/pax8")["SecretString"]
    assert "s3cr3t" in value
    assert (
        standin.client("s3").get_object(Bucket="trueup-exports", Key="exports/a.csv")["Body"].read()
        == b"Client\n"
    )


@pytest.mark.parametrize(
    ("key_id", "secret"),
    [
        ("testing", "testing"),
        ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        (None, "wrong"),
    ],
)
def test_other_credentials_get_nothing_from_any_service(
    standin: AwsStandIn, key_id: str | None, secret: str
) -> None:
    key_id = key_id or standin.credentials.access_key_id  # the right key id with a wrong secret
    with pytest.raises(ClientError) as secrets_refused:
        client(standin, "secretsmanager", key_id, secret).get_secret_value(SecretId="trueup/pax8")
    assert "s3cr3t" not in str(secrets_refused.value)
    assert secrets_refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError, match="AccessDenied"):
        client(standin, "s3", key_id, secret).get_object(Bucket="trueup-exports", Key="exports/a.csv")
    with pytest.raises(ClientError) as tables_refused:
        client(standin, "dynamodb", key_id, secret).list_tables()
    assert tables_refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unsigned_request_and_motos_own_api_are_refused(standin: AwsStandIn) -> None:
    assert fetch(f"{standin.endpoint_url}/trueup-exports/exports/a.csv")[0] == 403
    status, body = fetch(f"{standin.endpoint_url}/moto-api/data.json")
    assert status == 403 and b"s3cr3t" not in body


def test_a_presigned_link_works_as_signed_and_not_once_changed_or_expired(
    standin: AwsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the export function signs its links: SigV4 (a SigV2 link, AWS's old form, is refused).
    s3 = boto3.session.Session(
        aws_access_key_id=standin.credentials.access_key_id,
        aws_secret_access_key=standin.credentials.secret_access_key,
        region_name=REGION,
    ).client("s3", endpoint_url=standin.endpoint_url, config=Config(signature_version="s3v4"))
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "trueup-exports", "Key": "exports/a.csv"}, ExpiresIn=900
    )
    assert fetch(url) == (200, b"Client\n")
    assert fetch(url.replace("exports/a.csv", "exports/b.csv"))[0] == 403  # another object
    signature = url.rsplit("X-Amz-Signature=", 1)[1][:64]
    assert fetch(url.replace(signature, "0" * 64))[0] == 403
    later = datetime.now(UTC) + timedelta(seconds=901)

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Later:
            return cls.fromtimestamp(later.timestamp(), tz)

    monkeypatch.setattr(aws_standin, "datetime", Later)
    status, body = fetch(url)
    assert status == 403 and b"expired" in body

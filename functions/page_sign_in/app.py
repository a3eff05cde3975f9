"""PageSignInFunction: a CloudFormation custom resource that sets the Cognito page client's OAuth settings.

The page client's callback URL is the API's URL, and the API's JWT authorizer lists the page client's
id: declared on the client itself, each would name the other (a circular dependency). So the client is
created plain, and this resource, created after both, sets its OAuth settings. Cognito's
UpdateUserPoolClient resets whatever it is not given, so the client's current settings are read
first and sent back with the OAuth ones.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3

from trueup.observability import logger

# What UpdateUserPoolClient accepts, out of what DescribeUserPoolClient answers.
KEPT = (
    "ClientName",
    "RefreshTokenValidity",
    "AccessTokenValidity",
    "IdTokenValidity",
    "TokenValidityUnits",
    "ReadAttributes",
    "WriteAttributes",
    "ExplicitAuthFlows",
    "AnalyticsConfiguration",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "EnablePropagateAdditionalUserContextData",
    "AuthSessionValidity",
    "RefreshTokenRotation",
)
OAUTH = (
    "CallbackURLs",
    "LogoutURLs",
    "AllowedOAuthFlows",
    "AllowedOAuthScopes",
    "SupportedIdentityProviders",
)


def apply(properties: dict[str, Any], cognito: Any) -> dict[str, Any]:
    """Give the client the OAuth settings in `properties`; returns what was set."""
    pool, client = properties["UserPoolId"], properties["ClientId"]
    current = cognito.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]
    oauth = {name: list(properties[name]) for name in OAUTH}
    cognito.update_user_pool_client(
        UserPoolId=pool,
        ClientId=client,
        **{name: current[name] for name in KEPT if name in current},
        **oauth,
        AllowedOAuthFlowsUserPoolClient=True,
    )
    return {"CallbackURL": oauth["CallbackURLs"][0]}


def respond(event: dict[str, Any], status: str, reason: str, data: dict[str, Any]) -> None:
    """Tell CloudFormation the outcome (a PUT to the presigned ResponseURL it gave)."""
    properties = event.get("ResourceProperties") or {}
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": event.get("PhysicalResourceId")
            or f"{properties.get('UserPoolId')}/{properties.get('ClientId')}/page-sign-in",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # CloudFormation's presigned https URL
        answer.read()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> None:
    kind = event.get("RequestType")
    logger.info("page sign-in settings", extra={"request_type": kind})
    try:
        # Delete: the client goes with the stack (or the rollback); nothing to undo here.
        data = {} if kind == "Delete" else apply(event["ResourceProperties"], boto3.client("cognito-idp"))
    except Exception as exc:  # CloudFormation must hear of any failure, or it waits for an hour
        logger.exception("could not set the page client's OAuth settings")
        respond(event, "FAILED", f"could not set the page client's OAuth settings: {exc}", {})
        return
    respond(event, "SUCCESS", "ok", data)

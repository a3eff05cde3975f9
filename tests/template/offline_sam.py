"""template.yaml as CloudFormation and Lambda will see it, checked on this machine with no AWS account.

- `load_template`: the template as written (samtranslator's parser: plain YAML loaders reject `!Ref`).
- `transform_offline`: the SAM transform CloudFormation runs on deploy, with aws-sam-translator.
- `lint`: cfn-lint's findings, as readable lines. cfn-lint no longer transforms SAM resources itself,
  so it only sees inside functions, APIs and schedules when given the transformed template.
- `sam_build`: the SAM CLI (its own venv, made by `make sam-venv`) building functions and layer
  (`infra.build`, shared with the built-artifact test and the cold-start benchmark).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any
from unittest import mock

from cfnlint.api import lint as cfn_lint
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from infra import build
from infra.build import LAMBDA_PYTHON as LAMBDA_PYTHON
from infra.build import ROOT as ROOT
from infra.build import TEMPLATE_PATH as TEMPLATE_PATH

REGION = "us-east-1"

Template = dict[str, Any]

# The transform asks for this map only when a function's Policies name an AWS managed policy; fixed
# here so that no IAM call (and no account) is needed. The ARNs are AWS's own, the same in every account.
AWS_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSLambdaVPCAccessExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    "CloudWatchLambdaInsightsExecutionRolePolicy": (
        "arn:aws:iam::aws:policy/CloudWatchLambdaInsightsExecutionRolePolicy"
    ),
}

# What `sam package` would put in place of local code paths: the transform accepts only S3 locations.
_PLACEHOLDER_BUCKET = "trueup-offline-transform"
_LOCAL_CODE = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class FixedManagedPolicies:
    """Stands in for samtranslator's ManagedPolicyLoader (which lists IAM): `load` is all it is asked."""

    def load(self) -> dict[str, str]:
        return dict(AWS_MANAGED_POLICIES)


def load_template(path: Path = TEMPLATE_PATH) -> Template:
    parsed: Template = yaml_parse(path.read_text())
    return parsed


def transform_offline(template: Template) -> Template:
    """The CloudFormation template the SAM transform makes of `template` (which is left unchanged)."""
    packaged = copy.deepcopy(template)
    for logical_id, resource in packaged.get("Resources", {}).items():
        key = _LOCAL_CODE.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        if key and isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
            properties[key] = f"s3://{_PLACEHOLDER_BUCKET}/{logical_id}.zip"
    # The transform reads the region (for ARNs and partition) from boto3's default session.
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": REGION}):
        try:
            transformed: Template = transform(packaged, {}, FixedManagedPolicies())
        except InvalidDocumentException as exc:
            problems = "\n".join(f"  - {cause.message}" for cause in exc.causes)
            raise AssertionError(f"the SAM transform rejects the template:\n{problems}") from exc
    return transformed


def lint(template_text: str) -> list[str]:
    """cfn-lint's findings (errors and warnings) for a YAML or JSON template, one readable line each."""
    return [
        f"{match.rule.id} line {match.linenumber}: {match.message}"
        for match in cfn_lint(template_text, regions=[REGION])
    ]


def sam_build(build_dir: Path, timeout: float = 300) -> str:
    """`sam build` of template.yaml into `build_dir`; a failure fails the test with sam's own output."""
    try:
        return build.sam_build(build_dir, TEMPLATE_PATH, timeout)
    except build.BuildError as exc:
        raise AssertionError(str(exc)) from exc

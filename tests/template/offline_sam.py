"""template.yaml as CloudFormation and Lambda will see it, checked on this machine with no AWS account.

- `load_template`: the template as written (samtranslator's parser: plain YAML loaders reject `!Ref`).
- `transform_offline`: the SAM transform CloudFormation runs on deploy, with aws-sam-translator.
- `lint`: cfn-lint's findings, as readable lines. cfn-lint no longer transforms SAM resources itself,
  so it only sees inside functions, APIs and schedules when given the transformed template.
- `sam_build`: the SAM CLI (its own venv, made by `make sam-venv`) building functions and layer.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

from cfnlint.api import lint as cfn_lint
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAM_VENV = ROOT / ".venv-sam"
REGION = "us-east-1"
LAMBDA_PYTHON = "3.12"

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


def sam_cli() -> Path:
    sam = SAM_VENV / "bin" / "sam"
    if not sam.is_file():
        raise AssertionError(
            f"the SAM CLI is not installed at {sam.relative_to(ROOT)}: run `make sam-venv` (`make test` does)"
        )
    return sam


def _runs_python(candidate: Path) -> bool:
    """True if `candidate` is a working Python of the Lambda runtime's version, with pip (sam uses it)."""
    try:
        answer = subprocess.run(
            [str(candidate), "-c", "import sys, pip; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return answer.returncode == 0 and answer.stdout.strip() == LAMBDA_PYTHON


def lambda_python_dir() -> Path:
    """A directory holding a working `python3.12`, the interpreter `sam build` needs for the runtime.

    A pyenv shim named python3.12 exists even when 3.12 is not the active version (and then fails), so
    pyenv's installed versions are looked at directly before anything on PATH.
    """
    executable = f"python{LAMBDA_PYTHON}"
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob(f"versions/{LAMBDA_PYTHON}.*/bin/{executable}"), reverse=True)
    on_path = shutil.which(executable)
    if on_path:
        candidates.append(Path(on_path))
    candidates += [Path("/usr/local/bin") / executable, Path("/usr/bin") / executable]
    for candidate in candidates:
        if _runs_python(candidate):
            return candidate.parent
    raise AssertionError(
        f"`sam build` needs Python {LAMBDA_PYTHON} with pip (the functions' runtime in template.yaml) and "
        f"none was found: looked in {pyenv_root}/versions, on PATH, /usr/local/bin and /usr/bin. Install it "
        f"(e.g. `pyenv install {LAMBDA_PYTHON}`) and run the tests again."
    )


def sam_build(build_dir: Path, timeout: float = 300) -> str:
    """`sam build` of template.yaml into `build_dir` (no container); returns its output or fails with it."""
    env = {
        **os.environ,
        "PATH": f"{lambda_python_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }
    command = [str(sam_cli()), "build", "--template", str(TEMPLATE_PATH), "--build-dir", str(build_dir)]
    try:
        answer = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`sam build` did not finish within {timeout:.0f} s") from exc
    output = answer.stdout + answer.stderr
    if answer.returncode != 0:
        tail = "\n".join(output.splitlines()[-60:])
        raise AssertionError(f"`sam build` failed (exit {answer.returncode}):\n{tail}")
    return output

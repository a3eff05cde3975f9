"""The Lambda layer as the local stack runs it: what a function's process may import, and nothing else.

In Lambda a function imports from its code folder and its layers' `python/` folders. The local
stack gives each worker exactly that, on the functions' own runtime (python3.12), started with
`-S` so that no site-packages (the dev venv's least) can hide a missing dependency:

- a built layer (`sam build` output: `<ContentUri>/python` exists) is used as it is;
- a layer in source form (`shared/`, with `requirements.txt` beside the package) is what `sam build`
  would make of it: its requirements installed by pip into `.venv-layer/<digest>/python` (once per
  requirements file and Python version, like the build), then the folder itself.

`python -m infra.local.layer` installs the project's layer packages ahead of time (`make run` and
`make test` do), so that a first start does not pause for pip.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from infra.build import LAMBDA_PYTHON, ROOT, find_python

PACKAGES_ROOT = ROOT / ".venv-layer"
REQUIREMENTS = "requirements.txt"
BUILT_FOLDER = "python"  # where a built layer keeps its packages (/opt/python in Lambda)


class LayerError(RuntimeError):
    """A layer cannot be prepared; the message says why."""


def runtime_python() -> Path:
    """The Python the functions run on: python3.12 where there is one, else this interpreter.

    Lambda runs 3.12; a machine without it still runs `make run`, on its own Python, and says so.
    """
    return find_python(LAMBDA_PYTHON) or Path(sys.executable)


@functools.cache
def python_version(python: Path) -> str:
    answer = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return answer.stdout.strip()


def packages_folder(requirements: Path, version: str) -> Path:
    """Where the packages of `requirements` for Python `version` are installed."""
    digest = hashlib.sha256(requirements.read_bytes() + version.encode()).hexdigest()[:16]
    return PACKAGES_ROOT / f"py{version}-{digest}" / BUILT_FOLDER


def install_packages(requirements: Path, python: Path, progress: Callable[[str], None] = print) -> Path:
    """Install `requirements` for `python` as `sam build` does (pip into a folder), unless already done.

    The install goes to a temporary folder renamed into place when complete, so an interrupted or
    concurrent install never leaves a half-filled folder that looks finished.
    """
    target = packages_folder(requirements, python_version(python))
    if target.is_dir():
        return target
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    shown = requirements.relative_to(ROOT) if requirements.is_relative_to(ROOT) else requirements
    progress(f"installing the layer's packages ({shown}) for {python.name}, once...")
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=target.parent.parent))
    try:
        answer = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-warn-script-location",
                "--target",
                str(staging / BUILT_FOLDER),
                "--requirement",
                str(requirements),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PIP_REQUIRE_VIRTUALENV": "0"},
        )
        if answer.returncode != 0:
            tail = "\n".join((answer.stdout + answer.stderr).splitlines()[-20:])
            raise LayerError(f"pip could not install {requirements} for {python}:\n{tail}")
        try:
            staging.rename(target.parent)
        except OSError:
            if not target.is_dir():  # not a concurrent install that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def layer_paths(content: Path, python: Path, progress: Callable[[str], None] = print) -> list[Path]:
    """What a layer puts on a function's import path, built or in source form (see the module's doc)."""
    built = content / BUILT_FOLDER
    if built.is_dir():
        return [built]
    requirements = content / REQUIREMENTS
    if not requirements.is_file():
        return [content]
    return [install_packages(requirements, python, progress), content]


def main() -> int:
    python = runtime_python()
    if python_version(python) != LAMBDA_PYTHON:
        print(f"warning: no Python {LAMBDA_PYTHON} found; the handlers will run on {python_version(python)}")
    for path in layer_paths(ROOT / "shared", python):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

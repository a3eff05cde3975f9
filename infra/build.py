"""Building template.yaml as `sam build` does, with the Python of the functions' Lambda runtime.

Used by the template tests (`tests/template`), the built-artifact test and `make bench`'s cold-start
figures, so all three look at the very artifact `sam deploy` would upload.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
SAM_VENV = ROOT / ".venv-sam"
LAMBDA_PYTHON = "3.12"  # template.yaml's Runtime: python3.12


class BuildError(RuntimeError):
    """The build cannot run or failed; the message says why and what to do."""


def _runs_python(candidate: Path, version: str) -> bool:
    """True if `candidate` is a working Python of `version`, with pip (sam build uses it)."""
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
    return answer.returncode == 0 and answer.stdout.strip() == version


def find_python(version: str = LAMBDA_PYTHON) -> Path | None:
    """A working `python<version>` with pip, or None.

    A pyenv shim named python3.12 exists even when 3.12 is not the active version (and then fails), so
    pyenv's installed versions are looked at directly before anything on PATH.
    """
    executable = f"python{version}"
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob(f"versions/{version}.*/bin/{executable}"), reverse=True)
    on_path = shutil.which(executable)
    if on_path:
        candidates.append(Path(on_path))
    candidates += [Path("/usr/local/bin") / executable, Path("/usr/bin") / executable]
    return next((c for c in candidates if _runs_python(c, version)), None)


def lambda_python() -> Path:
    """The interpreter of the functions' runtime (python3.12), or BuildError saying how to get one."""
    found = find_python(LAMBDA_PYTHON)
    if found is None:
        raise BuildError(
            f"Python {LAMBDA_PYTHON} with pip (the functions' runtime in template.yaml) was not found: "
            "looked in pyenv's versions, on PATH, /usr/local/bin and /usr/bin. Install it "
            f"(e.g. `pyenv install {LAMBDA_PYTHON}` or your system's python{LAMBDA_PYTHON} package)"
            " and try again."
        )
    return found


def sam_cli() -> Path:
    sam = SAM_VENV / "bin" / "sam"
    if not sam.is_file():
        raise BuildError(
            f"the SAM CLI is not installed at {sam.relative_to(ROOT)}: run `make sam-venv` (`make test` does)"
        )
    return sam


def sam_build(build_dir: Path, template: Path = TEMPLATE_PATH, timeout: float = 300) -> str:
    """`sam build` of `template` into `build_dir` (no container); returns its output or raises BuildError."""
    env = {
        **os.environ,
        "PATH": f"{lambda_python().parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }
    command = [str(sam_cli()), "build", "--template", str(template), "--build-dir", str(build_dir)]
    try:
        answer = subprocess.run(
            command,
            cwd=template.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"`sam build` did not finish within {timeout:.0f} s") from exc
    output = answer.stdout + answer.stderr
    if answer.returncode != 0:
        tail = "\n".join(output.splitlines()[-60:])
        raise BuildError(f"`sam build` failed (exit {answer.returncode}):\n{tail}")
    return output

"""The local stack the browser tests drive: the same subprocess driver as the end-to-end tests."""

from pathlib import Path

from tests.stack_process import REPO_ROOT, StackError, StackProcess

__all__ = ["REPO_ROOT", "LocalStack", "StackError"]


class LocalStack(StackProcess):
    """A demo stack whose functions keep their own log lines out of the test output."""

    def __init__(self, data_dir: Path, log_path: Path, rmm: str = "ninjaone") -> None:
        super().__init__(data_dir, log_path, quiet=True, rmm=rmm)

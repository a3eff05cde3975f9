from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack_process import StackProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """One demo stack per test module (its first sync takes a few seconds), stopped cleanly at the end."""
    root = tmp_path_factory.mktemp("stack")
    running = StackProcess(root / "data", root / "stack.log")
    running.start()
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            assert running.stop() == 0, running.log()

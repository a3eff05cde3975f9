from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack_process import StackProcess, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """One demo stack per test module (its first sync takes a few seconds), stopped cleanly at the end."""
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running

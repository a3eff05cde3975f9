from __future__ import annotations

from pathlib import Path

import pytest

from tests.template.offline_sam import sam_build


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` of template.yaml, once per test run: what `sam deploy` would upload."""
    build_dir = tmp_path_factory.mktemp("sam-build")
    sam_build(build_dir)
    return build_dir

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.system import System, start_system, stop_system


@pytest.fixture
async def system(db_url: str, tmp_path: Path) -> AsyncIterator[System]:
    sys_ = await start_system(db_url, tmp_path)
    yield sys_
    await stop_system(sys_)


@pytest.fixture
async def sqlite_system(sqlite_url: str, tmp_path: Path) -> AsyncIterator[System]:
    sys_ = await start_system(sqlite_url, tmp_path)
    yield sys_
    await stop_system(sys_)

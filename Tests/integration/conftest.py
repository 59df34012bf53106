"""The integration suite runs on the shared harness (Tests/harness/kvbharness): `broker`, `kvb`,
`topic`, `async def` tests, process logs in failing reports."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
pytest_plugins = ["kvbharness.plugin"]


@pytest.fixture
def topic_prefix() -> str:
    return "it"

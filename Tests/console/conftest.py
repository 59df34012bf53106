"""The console suite runs on the shared harness (Tests/harness/kvbharness): `broker`, `kvb`,
`clients` (ClientLoop), `async def` tests, process and console logs in failing reports."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
pytest_plugins = ["kvbharness.plugin"]

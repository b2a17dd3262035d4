"""Test-wide helpers: the shared real-data folder and the `shared` marker.

Tests that read /work/shared/data (next to the checkout: ../shared/data) carry `@pytest.mark.shared`.
A marked test is skipped, with the reason, when that folder is absent; a test that needs one file in it
asks for it with `shared_data(...)`, which also skips (naming the file) when the file is missing.
`pytest -m "not shared"` runs everything that needs no real data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """The path `parts` under ../shared/data; skips the calling test when it does not exist."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (real data from ../shared/data; see its README)")
    return path


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("shared") is not None and not SHARED_DATA.is_dir():
        pytest.skip(f"marked `shared`: {SHARED_DATA} (the shared real-data folder) is absent")

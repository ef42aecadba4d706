"""Shared fixtures. Test material from ../shared/corpora is read in place, never copied."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.feedserver import feed_server  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"


@pytest.fixture
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip("../shared/corpora is not present beside the repository")
    return CORPORA

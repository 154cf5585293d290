"""The resilience package's curated surface."""

from __future__ import annotations

from types import ModuleType

import stratum.resilience


def test_all_matches_the_public_names() -> None:
    package = stratum.resilience
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert set(package.__all__) == public

"""The wording of "this store cannot be used", shared by the store and its LMDB adapter."""

from __future__ import annotations

from pathlib import Path

from stratum.errors import StateStoreError


def advice(directory: Path) -> str:
    """What to tell the user about a store that cannot be used: deleting it is safe."""
    return (
        "the state store only mirrors progress and the destination's checkpoints are "
        f"authoritative, so {directory} can be deleted safely; the next run rebuilds it from them"
    )


def unusable(directory: Path, reason: str) -> StateStoreError:
    """A store that is unreadable, corrupt or damaged: say where, why, and what to do."""
    return StateStoreError(f"state store {directory} cannot be used: {reason}; {advice(directory)}")

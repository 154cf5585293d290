"""The state store: the engine's local write-ahead log and progress store, in LMDB.

`StateStore` (store.py) keeps one `ItemRecord` per plan item and one `RunRecord` per run
(records.py) for each plan file; the destination's checkpoints stay authoritative. Importing
this package does not import lmdb: that happens when a store is opened.
"""

from stratum.state.records import (
    ALLOWED_TRANSITIONS,
    RUN_STATUSES,
    ItemRecord,
    ItemState,
    RunRecord,
    check_transition,
)
from stratum.state.store import (
    LAYOUT_VERSION,
    STATE_DIR_ENV,
    StateStore,
    default_state_dir,
    store_directory,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "LAYOUT_VERSION",
    "RUN_STATUSES",
    "STATE_DIR_ENV",
    "ItemRecord",
    "ItemState",
    "RunRecord",
    "StateStore",
    "check_transition",
    "default_state_dir",
    "store_directory",
]

"""The other process of the state store tests (a real one: LMDB and flock() are per process).

    python _worker.py lock STATE_DIR PLAN           take the writer lock, print "locked", wait
    python _worker.py read STATE_DIR PLAN MAP_SIZE  open read-only with that initial map size,
                                                    print "ready", then for every line on stdin
                                                    print the items on record and the size of
                                                    its map, as JSON

Failures are printed as "error: ..." so the test reads them instead of hanging.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stratum.state import StateStore, _environment


def hold_lock(state_dir: Path, plan: Path) -> None:
    store = StateStore.open(state_dir, plan)
    store.lock()
    print("locked", flush=True)
    sys.stdin.read()  # until the test kills this process


def read(state_dir: Path, plan: Path, map_size: int) -> None:
    _environment.INITIAL_MAP_SIZE = map_size
    with StateStore.open(state_dir, plan, readonly=True) as store:
        print("ready", flush=True)
        for _ in sys.stdin:
            items = [[item.name, item.rows_read] for item in store.items()]
            map_size = store._open_env().map_size()
            print(json.dumps({"items": items, "map_size": map_size}), flush=True)


def main() -> None:
    command, state_dir, plan = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    try:
        if command == "lock":
            hold_lock(state_dir, plan)
        else:
            read(state_dir, plan, int(sys.argv[4]))
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main()

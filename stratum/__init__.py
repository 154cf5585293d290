"""Stratum: a declarative, resumable data-migration engine.

The public Python API mirrors the CLI:

    >>> import anyio, stratum
    >>> plan = stratum.load_plan("examples/quickstart.smql")   # doctest: +SKIP
    >>> summary = anyio.run(lambda: stratum.run_plan(plan))    # doctest: +SKIP
    >>> stratum.read_progress("examples/quickstart.smql")      # doctest: +SKIP

Importing stratum loads no database driver: connectors import theirs when they open.
"""

__version__ = "0.1.0"

from stratum.api import read_progress, run_plan
from stratum.errors import PlanError, StratumError, Terminal, Transient
from stratum.plan import MigrationPlan, PlanItem, compile_plan, diagnose, load_plan
from stratum.runtime.executor import MigrationExecutor, RunOptions, RunSummary
from stratum.state import ItemRecord, ItemState, StateStore

__all__ = [
    "ItemRecord",
    "ItemState",
    "MigrationExecutor",
    "MigrationPlan",
    "PlanError",
    "PlanItem",
    "RunOptions",
    "RunSummary",
    "StateStore",
    "StratumError",
    "Terminal",
    "Transient",
    "__version__",
    "compile_plan",
    "diagnose",
    "load_plan",
    "read_progress",
    "run_plan",
]

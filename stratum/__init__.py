"""Stratum: a declarative, resumable data-migration engine.

The public Python API mirrors the CLI:

    >>> import stratum
    >>> plan = stratum.load_plan("examples/quickstart.smql")   # doctest: +SKIP
    >>> print(plan.to_text())                                  # doctest: +SKIP

Importing stratum loads no database driver: connectors import theirs when they open.
"""

__version__ = "0.1.0"

from stratum.errors import PlanError, StratumError, Terminal, Transient
from stratum.plan import MigrationPlan, PlanItem, compile_plan, diagnose, load_plan

__all__ = [
    "MigrationPlan",
    "PlanError",
    "PlanItem",
    "StratumError",
    "Terminal",
    "Transient",
    "__version__",
    "compile_plan",
    "diagnose",
    "load_plan",
]

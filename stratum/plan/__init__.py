"""The migration plan: compiled from SMQL, immutable, hashed, rendered for people and machines."""

from stratum.plan.compiler import compile_plan, diagnose, load_plan
from stratum.plan.model import MigrationPlan, PlanItem

__all__ = ["MigrationPlan", "PlanItem", "compile_plan", "diagnose", "load_plan"]

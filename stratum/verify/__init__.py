"""`stratum verify`: source and destination compared, chunk by chunk, inside each database."""

from stratum.verify.run import ItemCheck, verify_plan

__all__ = ["ItemCheck", "verify_plan"]

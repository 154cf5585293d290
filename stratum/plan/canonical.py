"""Canonical serialisation and hashes.

An item's hash is the sha256 of a canonical JSON form of what the item does: its name, kind,
source, target and resolved options, with embedded SQL in its normalised form
(`smql.sql.normalize_sql`: tokens, no comments, keywords upper-case). It
leaves out where the item is written in the file, its dependencies (derived from other items)
and tuning that does not change the result (batch size). So reformatting a file, adding a
comment or reordering statements changes no hash, and editing one item changes only that item's
hash and the plan's. The plan's hash covers its connections (templates, never secrets) and the
hashes of its items.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from stratum.plan.model import ConnectionSpec, Options, Source, Sql, TableRef

FORMAT_VERSION = 1
"""Bumped when the canonical form changes, so old checkpoints are not mistaken for new ones."""

_UNHASHED_OPTIONS = frozenset({"batch_size"})

#: Source fields added to the canonical form after FORMAT_VERSION 1. Each is hashed only when it
#: is not empty, so an item that does not use the clause keeps the hash it had before the field
#: existed (and its checkpoints stay valid); an item that does use it gets a new hash.
_HASHED_WHEN_SET = frozenset({"views"})


def to_data(value: Any, for_hash: bool = False) -> Any:
    """Plain JSON data for dataclasses, enums, tuples and mappings (dataclass field order).
    Embedded SQL is its text as written, or with `for_hash` its normalised form."""
    if isinstance(value, Sql):
        return value.normalized if for_hash else value.text
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_data(getattr(value, f.name), for_hash)
            for f in dataclasses.fields(value)
            if not f.metadata.get("secret")
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_data(v, for_hash) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [to_data(v, for_hash) for v in value]
    return value


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def item_identity(
    name: str, kind: str, source: Source, target: TableRef, options: Options
) -> dict[str, Any]:
    """What an item's hash is computed from."""
    hashed = to_data(options, for_hash=True)
    hashed_options = {k: v for k, v in hashed.items() if k not in _UNHASHED_OPTIONS}
    hashed_source = {
        k: v for k, v in to_data(source, for_hash=True).items() if k not in _HASHED_WHEN_SET or v
    }
    return {
        "version": FORMAT_VERSION,
        "name": name,
        "kind": kind,
        "source": {"type": type(source).__name__, **hashed_source},
        "target": to_data(target),
        "options": hashed_options,
    }


def item_hash(name: str, kind: str, source: Source, target: TableRef, options: Options) -> str:
    return sha256(item_identity(name, kind, source, target, options))


def plan_hash(connections: Sequence[ConnectionSpec], item_hashes: Mapping[str, str]) -> str:
    return sha256(
        {
            "version": FORMAT_VERSION,
            "connections": {c.name: c.url for c in connections},
            "items": dict(item_hashes),
        }
    )

"""The error a failed item reports, out of its producer/consumer task group."""

from __future__ import annotations

import anyio

from stratum.errors import ConnectionLost
from stratum.runtime.pipeline import ItemFailed, _unwrap


def test_the_consumers_error_wins_over_the_producers_broken_stream() -> None:
    """A consumer that fails closes its stream; a producer blocked in send then raises
    BrokenResourceError, which is the echo, not the cause."""
    cause = ItemFailed("item 'x' stops at the first bad row")
    group = BaseExceptionGroup("actors", [cause, anyio.BrokenResourceError()])
    assert _unwrap(group) is cause


def test_an_error_of_ours_alone_is_unwrapped() -> None:
    cause = ConnectionLost("reset")
    assert _unwrap(BaseExceptionGroup("actors", [cause])) is cause


def test_anything_else_keeps_the_group() -> None:
    group = BaseExceptionGroup("actors", [ValueError("bug"), anyio.BrokenResourceError()])
    assert _unwrap(group) is group
    alone = BaseExceptionGroup("actors", [anyio.BrokenResourceError()])
    assert _unwrap(alone) is alone

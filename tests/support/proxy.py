"""A loopback TCP proxy that fault-injection tests put between Stratum and a database server.

The proxy listens on 127.0.0.1 (a free port) and forwards every connection to the server; its
event loop runs in a thread of its own, so it keeps forwarding while the code under test runs
in a subprocess (`stratum migrate` with a plan whose URL points at `proxy.port`) or in the
test's own event loop. The test controls it from its thread:

=====================================  ===================================================
control                                effect
=====================================  ===================================================
``reset()``                            every open connection is reset: SO_LINGER 0, then
                                       close, so both peers get a TCP RST
``refuse(times=None)``                 new connections are accepted and reset at once
                                       (`times` of them, or every one until ``heal()``)
``stall(seconds)``                     nothing is forwarded for `seconds` (the bytes wait)
``slow(bytes_per_second)``             every connection forwards at most that rate, each
                                       way (None: full speed again)
``cut_after(n, direction)``            the connection is reset once `n` more bytes have
                                       gone in `direction` (exactly `n` are forwarded)
``cut_at(pattern, direction)``         the connection is reset when `pattern` goes by in
                                       `direction`: with ``forward=False`` the bytes from
                                       the pattern on are dropped (the peer never sees
                                       them), with ``forward=True`` they are forwarded first
``heal()``                             every fault disarmed, full speed, nothing refused
=====================================  ===================================================

`direction` is ``UP`` (client to server) or ``DOWN`` (server to client). A cut applies to
``connection=N``, the Nth connection accepted after it was armed (1: the next new one), or to
any connection when None; ``skip=K`` lets K matches go by first, ``once_seen=pattern`` starts
counting a `cut_after` only once that pattern went by. A cut fires once; `proxy.cuts` records
where each one struck.

Counters: `connections` (accepted, refused ones included), `refused`, `resets` (connections
the proxy reset, by any control), `open_connections`, `bytes_up`, `bytes_down`; `log` holds
(time.monotonic(), connection number, what happened) for every accept, refusal and reset.

    with Proxy(5432) as proxy:
        url = proxy.url("postgresql://postgres@127.0.0.1:5432/db")
        ...
        proxy.cut_at(b"COMMIT\\x00", DOWN)   # the server committed; the client never hears it

`close()` (or leaving the `with` block) resets what is open, stops the loop and joins the
thread; every socket is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

__all__ = ["DOWN", "UP", "Cut", "Direction", "Proxy"]

T = TypeVar("T")

_CHUNK = 64 * 1024
_SLOW_CHUNK = 1024
_LINGER_ZERO = struct.pack("ii", 1, 0)
_TAIL = 256  # bytes of each stream kept, to find a pattern split between two reads


class Direction(StrEnum):
    UP = "up"  # client -> server
    DOWN = "down"  # server -> client


UP = Direction.UP
DOWN = Direction.DOWN


@dataclass
class Cut:
    """An armed cut (see the module docstring). `struck` holds, once it fired, the connection's
    number and how many bytes it had forwarded in `direction` when it was cut."""

    direction: Direction
    after: int | None = None  # bytes, counted from arming (or from `once_seen`)
    pattern: bytes | None = None
    forward: bool = False  # cut_at: forward the pattern before cutting
    connection: int | None = None  # the Nth connection accepted after arming; None: any
    skip: int = 0  # matches to let go by first
    once_seen: bytes | None = None
    armed_at: int = 0  # connections accepted when it was armed
    seen: bool = False
    counted: int = 0
    struck: tuple[int, int] | None = None

    def applies_to(self, number: int) -> bool:
        return self.connection is None or number == self.armed_at + self.connection


@dataclass
class _Connection:
    number: int
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    sent: dict[Direction, int] = field(default_factory=lambda: {UP: 0, DOWN: 0})
    tails: dict[Direction, bytes] = field(default_factory=lambda: {UP: b"", DOWN: b""})
    ended: set[Direction] = field(default_factory=set)
    closed: bool = False

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.server) if w is not None]

    def reset(self) -> None:
        """RST both sides: SO_LINGER 0, then close."""
        self.closed = True
        for writer in self.writers():
            _abort(writer)

    def close(self) -> None:
        self.closed = True
        for writer in self.writers():
            writer.close()


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    writer.transport.abort()


class Proxy:
    """A TCP proxy from 127.0.0.1:<free port> to `upstream_host:upstream_port`."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.connections = 0
        self.refused = 0
        self.resets = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.cuts: list[Cut] = []
        self.log: list[tuple[float, int, str]] = []
        self._open: dict[int, _Connection] = {}
        self._refusing: int | None = 0  # connections still to refuse; None: every one
        self._stalled_until = 0.0
        self._rate: float | None = None
        self._numbers = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._serve, name="test-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"the proxy did not start: {self._error}") from self._error

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended already
                loop.call_soon_threadsafe(stop.set)
        thread.join(10)

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self._server.close()
            for conn in list(self._open.values()):
                conn.reset()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    # --- URLs -----------------------------------------------------------------------------

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        credentials, _, _ = parts.netloc.rpartition("@")
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    # --- controls (called from the test's thread) -----------------------------------------

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def reset(self) -> int:
        """RST every open connection; how many were reset."""

        async def reset_all() -> int:
            open_now = list(self._open.values())
            for conn in open_now:
                self._reset(conn)
            return len(open_now)

        return self._call(reset_all())

    def refuse(self, times: int | None = None) -> None:
        """Reset the next `times` new connections as soon as they are accepted (None: every one
        until `heal()`)."""
        self._refusing = times

    def stall(self, seconds: float) -> None:
        """Forward nothing for `seconds` from now (returns at once)."""
        self._stalled_until = time.monotonic() + seconds

    def slow(self, bytes_per_second: float | None) -> None:
        """Forward at most `bytes_per_second` per connection and direction (None: full speed)."""
        self._rate = bytes_per_second

    def cut_after(
        self,
        nbytes: int,
        direction: Direction = UP,
        *,
        connection: int | None = None,
        once_seen: bytes | None = None,
    ) -> Cut:
        """Reset a connection once `nbytes` more bytes went in `direction` (after `once_seen`
        went by, when given); exactly `nbytes` are forwarded."""
        return self._arm(Cut(direction, after=nbytes, connection=connection, once_seen=once_seen))

    def cut_at(
        self,
        pattern: bytes,
        direction: Direction = UP,
        *,
        forward: bool = False,
        connection: int | None = None,
        skip: int = 0,
    ) -> Cut:
        """Reset a connection when `pattern` goes by in `direction`, dropping it and what
        follows (or, with `forward`, after forwarding the chunk that holds it)."""
        return self._arm(
            Cut(direction, pattern=pattern, forward=forward, connection=connection, skip=skip)
        )

    def heal(self) -> None:
        """Disarm every cut, stop refusing, stalling and slowing."""
        self._refusing = 0
        self._stalled_until = 0.0
        self._rate = None
        self._call(self._disarm())

    def wait_for(self, condition: Callable[[Proxy], bool], timeout: float = 10.0) -> None:
        """Wait until `condition(self)` holds; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"proxy: condition not met within {timeout} s: {self!r}")
            time.sleep(0.01)

    def __repr__(self) -> str:
        return (
            f"Proxy(port={self.port}, upstream={self.upstream[0]}:{self.upstream[1]}, "
            f"connections={self.connections}, open={self.open_connections}, "
            f"refused={self.refused}, resets={self.resets}, up={self.bytes_up}, "
            f"down={self.bytes_down}, cuts={[c.struck for c in self.cuts]})"
        )

    def _arm(self, cut: Cut) -> Cut:
        async def arm() -> Cut:
            cut.armed_at = self.connections
            self.cuts.append(cut)
            return cut

        return self._call(arm())

    async def _disarm(self) -> None:
        self.cuts = [cut for cut in self.cuts if cut.struck is not None]

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None or self._thread is None:
            coroutine.close()
            raise RuntimeError("the proxy is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(10)

    # --- forwarding (on the proxy's loop) -------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _note(self, number: int, what: str) -> None:
        self.log.append((time.monotonic(), number, what))

    def _reset(self, conn: _Connection) -> None:
        if not conn.closed:
            self.resets += 1
            self._note(conn.number, "reset")
        conn.reset()
        self._open.pop(conn.number, None)

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        number = next(self._numbers)
        self.connections = number
        conn = _Connection(number, client)
        if self._refusing is None or self._refusing > 0:
            if self._refusing is not None:
                self._refusing -= 1
            self.refused += 1
            self._note(number, "refused")
            self._reset(conn)
            return
        self._note(number, "accepted")
        self._open[number] = conn
        try:
            server_reader, conn.server = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._reset(conn)
            return
        if conn.closed:  # reset while connecting
            self._reset(conn)
            return
        self._spawn(self._pump(conn, UP, client_reader, conn.server))
        self._spawn(self._pump(conn, DOWN, server_reader, client))

    async def _pump(
        self,
        conn: _Connection,
        direction: Direction,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        try:
            while True:
                data = await reader.read(_SLOW_CHUNK if self._rate else _CHUNK)
                if data:
                    await self._hold(len(data))
                if not data or conn.closed:
                    break
                data, cut = self._inspect(conn, direction, data)
                if data:
                    writer.write(data)
                    conn.sent[direction] += len(data)
                    if direction is UP:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                    await writer.drain()
                if cut:
                    self._reset(conn)
                    return
        except (ConnectionError, OSError):
            self._reset(conn)  # a peer reset it: the other peer is reset too
            return
        self._ended(conn, direction, writer)

    def _ended(self, conn: _Connection, direction: Direction, writer: asyncio.StreamWriter) -> None:
        """End of stream from one peer: passed on (half-close); the connection is closed once
        both peers are done."""
        conn.ended.add(direction)
        if conn.closed:
            return
        if len(conn.ended) == len(Direction):
            conn.close()
            self._open.pop(conn.number, None)
        elif writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()

    async def _hold(self, nbytes: int) -> None:
        wait = self._stalled_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        rate = self._rate
        if rate:
            await asyncio.sleep(nbytes / rate)

    def _inspect(self, conn: _Connection, direction: Direction, data: bytes) -> tuple[bytes, bool]:
        """The part of `data` to forward, and whether the connection is cut after it."""
        tail = conn.tails[direction]
        window = tail + data
        conn.tails[direction] = window[-_TAIL:]
        for cut in self.cuts:
            if cut.struck is not None or cut.direction is not direction:
                continue
            if not cut.applies_to(conn.number):
                continue
            keep = _strike_at(cut, window, len(tail))
            if keep is not None:
                cut.struck = (conn.number, conn.sent[direction] + keep)
                return data[:keep], True
        return data, False


def _matches(pattern: bytes, window: bytes, offset: int) -> list[int]:
    """Where `pattern` ends in `window`, past `offset` (a match that ends within the bytes
    inspected before was seen then), as offsets into the new bytes."""
    ends = []
    found = window.find(pattern)
    while found >= 0:
        end = found + len(pattern)
        if end > offset:
            ends.append(end - offset)
        found = window.find(pattern, found + 1)
    return ends


def _strike_at(cut: Cut, window: bytes, offset: int) -> int | None:
    """Where `cut` strikes in the new bytes (`window[offset:]`): how many of them are forwarded
    before the connection is cut; None when it does not strike in them."""
    size = len(window) - offset
    if cut.pattern is not None:
        for end in _matches(cut.pattern, window, offset):
            if cut.skip:
                cut.skip -= 1
                continue
            return size if cut.forward else max(0, end - len(cut.pattern))
        return None
    assert cut.after is not None
    begin = 0
    if cut.once_seen is not None and not cut.seen:
        ends = _matches(cut.once_seen, window, offset)
        if not ends:
            return None
        cut.seen = True
        begin = ends[0]
    room = cut.after - cut.counted
    if size - begin >= room:
        return begin + room
    cut.counted += size - begin
    return None

"""A TCP proxy on 127.0.0.1 that injects network faults in front of a real server.

The server is never touched: the code under test connects to the proxy's port, and the
proxy forwards bytes both ways until told to misbehave::

    with FaultProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test"
        ...
        proxy.stall()            # stop forwarding; connections stay open, nothing arrives
        proxy.resume()           # forward again (new connections too)
        proxy.cut_after(4096)    # forward 4 KiB more from the server, then close both ends
        proxy.stall_after(4096)  # forward 4 KiB more from the server, then stall
        proxy.kill()             # reset every open connection (new ones still work)
        proxy.reject()           # accept new connections and close them at once
        proxy.refuse()           # stop listening: connecting is refused (closed port)
        proxy.hold_new()         # new connections hang; open ones keep forwarding

Thread based, so it serves sync and asyncio clients alike, whatever their event loop.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from types import TracebackType

_CHUNK = 65536
_TICK = 0.02


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()

    def close(self, reset: bool = False) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.upstream):
            if reset:  # RST instead of FIN: what a killed connection looks like
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.close()


class FaultProxy:
    """Forward 127.0.0.1:<port> to ``host:port``, with injectable faults."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._mode = "pass"  # pass | stall | reject
        self._hold_new = False  # new connections hang (open ones are served as _mode says)
        self._budget: int | None = None  # bytes from the server still forwarded
        self._after_budget = "cut"  # what happens when the budget is spent: cut | stall
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.port = 0
        self.accepted = 0

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(_TICK * 5)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()
        return self

    def close(self) -> None:
        """Stop listening and close every connection (the server sees the clients go)."""
        self._stop.set()
        self._close_listener()
        self.kill()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- faults -----------------------------------------------------------------------

    def resume(self) -> None:
        """Forward everything again; listen again if :meth:`refuse` stopped it."""
        with self._lock:
            self._mode, self._budget, self._hold_new = "pass", None, False
        if self._listener is None:
            self.start()

    def hold_new(self) -> None:
        """New connections are accepted and hang before the handshake; the open ones
        keep forwarding (:meth:`resume` lets new ones through again)."""
        with self._lock:
            self._hold_new = True

    def stall(self) -> None:
        """Forward nothing in either direction; new connections are accepted and hang."""
        with self._lock:
            self._mode = "stall"

    def cut_after(self, nbytes: int) -> None:
        """Forward ``nbytes`` more bytes from the server, then close both ends."""
        with self._lock:
            self._budget, self._after_budget = nbytes, "cut"

    def stall_after(self, nbytes: int) -> None:
        """Forward ``nbytes`` more bytes from the server, then forward nothing."""
        with self._lock:
            self._budget, self._after_budget = nbytes, "stall"

    def kill(self) -> None:
        """Reset every open connection, as a server killing its sessions does."""
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close(reset=True)

    def reject(self) -> None:
        """Accept new connections and close them at once (a server out of connections)."""
        with self._lock:
            self._mode = "reject"

    def refuse(self) -> None:
        """Stop listening: connecting gets ECONNREFUSED, like a server that is down."""
        self._close_listener()

    @property
    def open_links(self) -> int:
        with self._lock:
            return sum(1 for link in self._links if not link.closed.is_set())

    # --- machinery --------------------------------------------------------------------

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stop.is_set() and self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self._mode == "reject":
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        while (self._mode == "stall" or self._hold_new) and not self._stop.is_set():
            self._stop.wait(_TICK)  # a stalled server never even answers the handshake
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        link = _Link(client, upstream)
        with self._lock:
            self._links.append(link)
        threading.Thread(target=self._pump, args=(link, client, upstream, False),
                         daemon=True).start()
        self._pump(link, upstream, client, True)

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket,
              from_server: bool) -> None:
        try:
            while not link.closed.is_set():
                if self._mode == "stall":
                    link.closed.wait(_TICK)
                    continue
                ready, _, _ = select.select([source], [], [], _TICK)
                if not ready or self._mode == "stall":
                    continue
                data = source.recv(_CHUNK)
                if not data:
                    break
                if from_server and not self._spend(data, sink, link):
                    return
                elif not from_server:
                    sink.sendall(data)
        except OSError:
            pass
        link.close()

    def _spend(self, data: bytes, sink: socket.socket, link: _Link) -> bool:
        """Forward ``data`` within the byte budget; False once the budget ran out."""
        with self._lock:
            budget = self._budget
            if budget is not None:
                self._budget = max(0, budget - len(data))
        if budget is None or len(data) < budget:
            sink.sendall(data)
            return True
        sink.sendall(data[:budget])
        if self._after_budget == "cut":
            link.close()
            return False
        with self._lock:
            self._mode, self._budget = "stall", None
        return True

"""The Dify simulator in a child process, driven over a pipe (so its CPU is not the client's).

A benchmark passes its own ``serve(conn, time_scale)``: it starts the simulator, sends
``(base_url, api_key)``, then answers the messages `call` sends until ``("stop",)``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


class SimulatorProcess:
    def __init__(self, serve: Callable[[Connection, float], None], time_scale: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child, time_scale), daemon=True)
        self._process.start()
        self.base_url, self.api_key = self._conn.recv()

    def call(self, *message: Any) -> Any:
        self._conn.send(message)
        return self._conn.recv()

    def stop(self) -> None:
        self.call("stop")
        self._process.join(10)

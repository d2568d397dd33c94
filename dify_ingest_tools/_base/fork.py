"""What a forked child inherits from the library, and how it lets go of it.

After ``os.fork()`` (multiprocessing's default start method on Linux) the child has a copy
of every client, but not the threads that ran them, and it shares the parent's sockets and
event-loop kernel objects (an epoll instance is one object in both processes: unregistering a
socket in the child unregisters it in the parent). So in the child each client starts
afresh on first use and never touches what belongs to the parent; objects whose finalizers
would act on the parent's connections are kept alive here instead of being collected.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Protocol

logger = logging.getLogger("dify_ingest_tools")


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_registered: weakref.WeakSet[ForkAware] = weakref.WeakSet()
# The parent's sessions, loops and monitors as the child inherited them: never closed or
# collected here, since closing them would act on connections the parent still uses.
_abandoned: list[object] = []


def register(owner: ForkAware) -> None:
    """Have ``owner._after_fork_in_child()`` called in every forked child (weakly held)."""
    _registered.add(owner)


def abandon(*objects: object) -> None:
    """Keep the parent's objects alive in the child, so no finalizer of theirs ever runs."""
    _abandoned.extend(objects)


def _after_fork_in_child() -> None:
    for owner in list(_registered):
        try:
            owner._after_fork_in_child()
        except Exception:  # a hook must not break the child's start
            logger.exception("could not reset %r after fork", owner)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

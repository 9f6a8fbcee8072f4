"""A persistent pool of worker processes for untrusted CPU-heavy work (sympy/mpmath on model output).

Each task runs in a worker process with a hard wall-clock timeout (enforced by the parent's pool
manager, so it works from any thread: TRL runs async rewards on a background thread where
``signal.alarm`` does nothing) and an address-space cap set with ``resource.setrlimit`` in the
worker. A worker that times out is killed and replaced; one that dies is replaced; the caller always
gets one :class:`SandboxOutcome` per input. The pool is `pebble <https://pypi.org/project/Pebble/>`_'s
``ProcessPool`` (maintained, does exactly this), started with the ``forkserver`` method so workers
are forked from a clean single-threaded server, not from a trainer process full of threads.

Like any multiprocessing code, scripts that call this must guard their entry point with
``if __name__ == "__main__":``.

Example:
    >>> from ladder_hf.verifier import run_sandboxed
    >>> [o.value for o in run_sandboxed(pow, [(2, 10), (3, 2)])]  # doctest: +SKIP
    [1024, 9]
"""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired, ProcessPool

DEFAULT_TIMEOUT = 2.0


@dataclass(frozen=True)
class SandboxOutcome:
    """What happened to one sandboxed call: ``ok`` and its ``value``, or an ``error`` description."""

    ok: bool
    value: Any = None
    error: str = ""


@dataclass
class SandboxConfig:
    """Settings of the shared worker pool (read from the environment once, at first use)."""

    workers: int = 0  # 0: one per CPU core, at most 8
    memory_mb: int = 1024  # address-space cap of each worker
    max_tasks_per_worker: int = 2000  # recycle workers now and then: sympy's caches only grow

    @classmethod
    def from_env(cls) -> SandboxConfig:
        return cls(
            workers=int(os.environ.get("LADDER_HF_VERIFIER_WORKERS", 0)),
            memory_mb=int(os.environ.get("LADDER_HF_VERIFIER_MEMORY_MB", 1024)),
            max_tasks_per_worker=int(os.environ.get("LADDER_HF_VERIFIER_MAX_TASKS", 2000)),
        )

    def n_workers(self) -> int:
        return self.workers if self.workers > 0 else max(1, min(8, os.cpu_count() or 1))


def _init_worker(memory_bytes: int) -> None:
    """Runs in each worker before any task: cap memory, no core dumps, lower priority than training."""
    import resource

    if memory_bytes > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError):  # not permitted in some containers
        os.nice(5)


_pool: ProcessPool | None = None
_pool_workers = 0
_lock = threading.Lock()


def _context():
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # Import the verifier once in the server so each forked worker starts warm.
        ctx.set_forkserver_preload(["ladder_hf.verifier.core"])
        return ctx
    return multiprocessing.get_context("spawn")


def get_pool() -> tuple[ProcessPool, int]:
    """The shared pool (created on first use, re-created if it was stopped)."""
    global _pool, _pool_workers
    with _lock:
        if _pool is None or not _pool.active:
            config = SandboxConfig.from_env()
            _pool_workers = config.n_workers()
            _pool = ProcessPool(
                max_workers=_pool_workers,
                max_tasks=config.max_tasks_per_worker,
                initializer=_init_worker,
                initargs=(config.memory_mb * 1024 * 1024,),
                context=_context(),
            )
        return _pool, _pool_workers


def shutdown() -> None:
    """Stop the worker pool (it is re-created on next use). Registered with ``atexit``."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.stop()
            _pool.join(timeout=5)
            _pool = None


atexit.register(shutdown)


def _describe(err: BaseException, timeout: float) -> str:
    if isinstance(err, FutureTimeout | TimeoutError):
        return f"timeout after {timeout:g}s"
    if isinstance(err, ProcessExpired):
        return f"worker died (exit code {err.exitcode})"
    if isinstance(err, MemoryError):
        return "memory limit exceeded"
    if isinstance(err, CancelledError):
        return "cancelled"
    return f"{type(err).__name__}: {str(err)[:200]}"


def run_sandboxed(fn: Callable, args_list: Sequence[tuple], timeout: float = DEFAULT_TIMEOUT) -> list[SandboxOutcome]:
    """Run ``fn(*args)`` for each args tuple in worker processes, in parallel, with a hard timeout each.

    ``fn`` must be a picklable top-level function; its return value must be picklable. Never raises
    for a bad item and never hangs: a timed-out item is killed (its worker replaced) and reported as
    ``SandboxOutcome(ok=False, error="timeout after 2s")``.

    Example:
        >>> outcomes = run_sandboxed(divmod, [(7, 2), (1, 0)])  # doctest: +SKIP
        >>> outcomes[0].value, outcomes[1].error  # doctest: +SKIP
        ((3, 1), 'ZeroDivisionError: integer division or modulo by zero')
    """
    if not args_list:
        return []
    pool, workers = get_pool()
    futures: list[Any] = []
    for args in args_list:
        try:
            futures.append(pool.schedule(fn, args=tuple(args), timeout=timeout))
        except Exception as err:  # e.g. the pool was stopped concurrently
            futures.append(err)
    # Safety net on top of pebble's per-task timeout: queued tasks wait for free workers, so allow for
    # the whole queue plus slack for replacing killed workers. Reached only if the pool itself stalls.
    waves = math.ceil(len(args_list) / max(1, workers))
    deadline = time.monotonic() + waves * (timeout + 1.0) + 30.0
    outcomes = []
    for future in futures:
        if isinstance(future, BaseException):
            outcomes.append(SandboxOutcome(False, error=_describe(future, timeout)))
            continue
        try:
            value = future.result(timeout=max(0.0, deadline - time.monotonic()))
            outcomes.append(SandboxOutcome(True, value=value))
        except FutureTimeout:
            if future.done():  # pebble's own per-task timeout
                outcomes.append(SandboxOutcome(False, error=_describe(TimeoutError(), timeout)))
            else:
                future.cancel()  # pebble kills the worker of a cancelled running task
                outcomes.append(SandboxOutcome(False, error="sandbox stalled; item abandoned"))
        except BaseException as err:
            outcomes.append(SandboxOutcome(False, error=_describe(err, timeout)))
    return outcomes

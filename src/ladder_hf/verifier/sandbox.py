"""A persistent pool of worker processes for untrusted CPU-heavy work (sympy/mpmath on model output).

Each task runs in a worker process with a wall-clock timeout and an address-space cap set with
``resource.setrlimit`` inside the worker. The worker times each task itself (``SIGALRM`` on its own main
thread) and reports a timed-out task without dying, so slow answers cost no process restart; the calling
process enforces a hard deadline a little later with ``selectors`` and ``kill`` (which works from any
thread: TRL runs async rewards on a background thread, where ``signal.alarm`` does nothing) for a task
Python cannot interrupt. A worker that misses the hard deadline is killed and replaced; one that
dies is replaced; the caller always gets one :class:`SandboxOutcome` per input, in order.

Why not ``multiprocessing``/``concurrent.futures``/pebble: their ``spawn`` and ``forkserver``
workers re-run the parent's ``__main__`` script (a training script importing torch, trl, ...: a
gigabyte and seconds per worker, and every replacement after a timeout pays it again), and ``fork``
copies a multi-threaded trainer. Workers here are fresh interpreters (``python -m
ladder_hf.verifier._worker``) that import only the verifier; tasks and results travel as pickles over
their stdin/stdout. ``fn`` must be importable by the worker: a top-level function of an importable
module (the worker gets the parent's ``sys.path``), not one defined in ``__main__``.

Example:
    >>> from ladder_hf.verifier import run_sandboxed
    >>> [o.value for o in run_sandboxed(pow, [(2, 10), (3, 2)])]  # doctest: +SKIP
    [1024, 9]
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import select
import selectors
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_TIMEOUT = 2.0
_HEADER = struct.Struct("<Q")
HARD_GRACE_SECONDS = 1.0  # after a task's own timeout, the parent waits this long before killing it
SLOW_TASK_SECONDS = 0.1  # tasks slower than this on average are sent one at a time
STARTUP_TIMEOUT = 120.0  # a fresh worker imports sympy/numpy/mpmath: slow on a loaded machine


@dataclass(frozen=True)
class SandboxOutcome:
    """What happened to one sandboxed call: ``ok`` and its ``value``, or an ``error`` description."""

    ok: bool
    value: Any = None
    error: str = ""


@dataclass
class SandboxConfig:
    """Settings of the shared worker pool (read from the environment when the pool starts)."""

    workers: int = 0  # 0: one per CPU core, at most 8
    memory_mb: int = 1024  # address-space cap of each worker
    max_tasks_per_worker: int = 2000  # recycle workers now and then: caches only grow
    nice: int = 0  # raise to let a trainer sharing the CPU go first
    chunk_size: int = 32  # most tasks sent to a worker in one frame

    @classmethod
    def from_env(cls) -> SandboxConfig:
        return cls(
            workers=int(os.environ.get("LADDER_HF_VERIFIER_WORKERS", 0)),
            memory_mb=int(os.environ.get("LADDER_HF_VERIFIER_MEMORY_MB", 1024)),
            max_tasks_per_worker=int(os.environ.get("LADDER_HF_VERIFIER_MAX_TASKS", 2000)),
            nice=int(os.environ.get("LADDER_HF_VERIFIER_NICE", 0)),
            chunk_size=max(1, int(os.environ.get("LADDER_HF_VERIFIER_CHUNK", 32))),
        )

    def n_workers(self) -> int:
        return self.workers if self.workers > 0 else max(1, min(8, os.cpu_count() or 1))


def write_frame(stream, payload: bytes) -> None:
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:  # unbuffered pipes may take a large frame in pieces
        written = stream.write(view)
        view = view[written if written is not None else len(view) :]
    stream.flush()


def _read_exact(stream, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(stream) -> bytes | None:
    """One length-prefixed frame, or None at end of stream."""
    header = _read_exact(stream, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    return _read_exact(stream, size)


class _Worker:
    """One worker interpreter; ``ready`` once it has imported the verifier and said so."""

    def __init__(self, config: SandboxConfig):
        env = dict(os.environ)
        # one thread per worker: workers are the parallelism; BLAS threads would only fight them
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ladder_hf.verifier._worker", str(config.memory_mb * 1024 * 1024), str(config.nice)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # no read-ahead: each frame is read when select() says so, never hidden in a buffer
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C meant for the trainer does not hit the workers mid-task
        )
        self.started = time.monotonic()
        self.ready = False
        self.tasks = 0
        self._buffer = bytearray()

    def fileno(self) -> int:
        return self.process.stdout.fileno()

    def send(self, fn: Callable, chunk: list[tuple], limits: list[float]) -> None:
        write_frame(self.process.stdin, pickle.dumps((fn, chunk, limits), protocol=pickle.HIGHEST_PROTOCOL))
        self.tasks += len(chunk)

    def receive(self) -> list:
        """The messages that have arrived, after one read (call when select says the pipe is readable):
        possibly none (half a frame), and None last when the worker's output ended. Reading whatever is
        there at once, rather than a frame per wake-up, saves the parent most of its per-task cost."""
        data = os.read(self.fileno(), 1 << 16)
        if not data:
            return [None]
        self._buffer += data
        messages = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            messages.append(pickle.loads(self._buffer[_HEADER.size : end]))
            del self._buffer[:end]
        return messages

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()

    def exit_code(self) -> int | None:
        try:
            return self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None


def _hard_limit(limit: float) -> float:
    # the worker interrupts a task itself at ``limit`` (no restart); the kill is the backstop for a task
    # stuck where Python cannot interrupt it
    return limit + max(HARD_GRACE_SECONDS, 0.5 * limit)


def _pickle_problem(fn: Callable, args: tuple) -> str:
    try:
        pickle.dumps((fn, [args], [0.0]), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        return str(err) or type(err).__name__
    return ""


class WorkerPool:
    """Persistent workers, one task each at a time, hard per-task timeouts. Thread-safe (batches queue)."""

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig.from_env()
        self.size = self.config.n_workers()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._failed_starts = 0  # consecutive workers that died or hung before becoming ready

    def _fill(self) -> None:
        self._workers = [w for w in self._workers if w.process.poll() is None]
        while len(self._workers) < self.size:
            self._workers.append(_Worker(self.config))

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers.remove(worker)
        self._workers.append(_Worker(self.config))

    def start(self, timeout: float = STARTUP_TIMEOUT) -> int:
        """Start the workers now and wait (at most ``timeout`` seconds) until each is ready; returns how many are."""
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool is closed")
            self._fill()
            deadline = time.monotonic() + timeout
            waiting = {w.process.stdout: w for w in self._workers if not w.ready}
            while waiting and time.monotonic() < deadline:
                readable, _, _ = select.select(list(waiting), [], [], max(0.0, deadline - time.monotonic()))
                for stream in readable:
                    worker = waiting[stream]
                    messages = self._receive(worker)
                    if not messages:  # half a frame so far
                        continue
                    del waiting[stream]
                    if messages[0] == ("ready", None):
                        worker.ready = True
                    else:  # died while starting: its replacement starts on the next run
                        worker.kill()
            return sum(w.ready for w in self._workers)

    def run(
        self, fn: Callable, args_list: Sequence[tuple], timeout: float, timeouts: Sequence[float] | None = None
    ) -> list[SandboxOutcome]:
        """Run ``fn(*args)`` for each item; ``timeouts`` (one per item) overrides ``timeout`` item by item."""
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool is closed")
            limits = list(timeouts) if timeouts is not None else [timeout] * len(args_list)
            return self._run(fn, list(args_list), limits)

    def _chunk_size(self, remaining: int, mean_seconds: float | None) -> int:
        # Chunks save a round trip per task, which matters for sub-millisecond tasks (answer checks) and
        # not at all for slow ones (sympy integrate), where balancing the workers matters more. Until a
        # task of this batch has been timed, chunks stay small. Always several chunks per worker, so
        # one slow task does not hold up a long tail, and a killed worker sends little work back.
        if mean_seconds is None:
            size = min(4, self.config.chunk_size)
        elif mean_seconds > SLOW_TASK_SECONDS:
            size = 1
        else:
            size = self.config.chunk_size
        return max(1, min(size, remaining // (2 * self.size)))

    def _run(self, fn: Callable, args_list: list[tuple], limits: list[float]) -> list[SandboxOutcome]:
        self._fill()
        outcomes: list[SandboxOutcome | None] = [None] * len(args_list)
        queue = deque(range(len(args_list)))
        # worker -> [indices still to be answered, deadline, started, when the current task's clock
        # started]; tasks go out in chunks (one frame, one round trip) and come back one frame each, so
        # every task still has its own clock
        busy: dict[_Worker, list] = {}
        timed = [0.0, 0]  # seconds and count of the tasks answered so far (sets the chunk size)
        selector = selectors.DefaultSelector()
        try:
            for worker in self._workers:
                selector.register(worker.process.stdout, selectors.EVENT_READ, worker)
            while queue or busy:
                for worker in self._workers:
                    if not queue:
                        break
                    if worker.ready and worker not in busy:
                        mean = timed[0] / timed[1] if timed[1] else None
                        chunk = [queue.popleft() for _ in range(self._chunk_size(len(queue), mean))]
                        try:
                            worker.send(fn, [args_list[i] for i in chunk], [limits[i] for i in chunk])
                        except (pickle.PicklingError, AttributeError, TypeError) as err:
                            # report the unpicklable tasks; the others go back to the queue
                            retry = []
                            for index in chunk:
                                problem = _pickle_problem(fn, args_list[index])
                                if problem:
                                    outcomes[index] = SandboxOutcome(False, error=f"cannot send task: {problem}")
                                else:
                                    retry.append(index)
                            if len(retry) == len(chunk):  # pragma: no cover - the chunk failed as a whole only
                                for index in retry:
                                    outcomes[index] = SandboxOutcome(False, error=f"cannot send task: {err}")
                            else:
                                queue.extendleft(reversed(retry))
                            continue
                        except OSError:  # the worker died while idle: retry the tasks on its replacement
                            queue.extendleft(reversed(chunk))
                            self._swap(selector, worker)
                            continue
                        # until the worker says "started" (chunk unpickled, fn's module imported), the
                        # clock is the generous startup one: a first import is not the task's time
                        busy[worker] = [deque(chunk), time.monotonic() + STARTUP_TIMEOUT, False, 0.0]
                now = time.monotonic()
                deadlines = [state[1] for state in busy.values()]
                deadlines += [w.started + STARTUP_TIMEOUT for w in self._workers if not w.ready]
                wait = max(0.0, min(deadlines) - now) if deadlines else 0.05
                for key, _ in selector.select(timeout=min(wait, 1.0)):
                    worker = key.data
                    for message in self._receive(worker):
                        state = busy.get(worker)
                        if state is not None and message == ("started", None) and not state[2]:
                            state[3] = time.monotonic()
                            state[1], state[2] = state[3] + _hard_limit(limits[state[0][0]]), True
                        elif state is not None:
                            pending = state[0]
                            if message is None:
                                code = worker.exit_code()
                                died = f"worker died (exit code {code})"
                                outcomes[pending.popleft()] = SandboxOutcome(False, error=died)
                                queue.extendleft(reversed(pending))  # the rest of its chunk goes to others
                                busy.pop(worker)
                                self._swap(selector, worker)
                                break
                            status, payload = message
                            ok = status == "ok"
                            if not state[2]:  # the chunk could not even be loaded: the same error for each task
                                for index in pending:
                                    outcomes[index] = SandboxOutcome(False, error=payload)
                                pending.clear()
                            else:
                                outcomes[pending.popleft()] = SandboxOutcome(
                                    ok, payload if ok else None, "" if ok else payload
                                )
                                now = time.monotonic()
                                timed[0] += now - state[3]
                                timed[1] += 1
                                state[3] = now
                                if pending:  # the next task's clock
                                    state[1] = now + _hard_limit(limits[pending[0]])
                            if not pending:
                                busy.pop(worker)
                                if worker.tasks >= self.config.max_tasks_per_worker:
                                    self._swap(selector, worker)
                        elif message == ("ready", None):
                            worker.ready = True
                            self._failed_starts = 0
                        else:  # died while starting
                            self._failed_starts += 1
                            self._swap(selector, worker)
                            break
                now = time.monotonic()
                for worker, (pending, deadline, _, _) in list(busy.items()):
                    if now > deadline:
                        busy.pop(worker)
                        index = pending.popleft()
                        outcomes[index] = SandboxOutcome(False, error=f"timeout after {limits[index]:g}s")
                        queue.extendleft(reversed(pending))
                        self._swap(selector, worker)
                for worker in list(self._workers):
                    if not worker.ready and now > worker.started + STARTUP_TIMEOUT:
                        self._failed_starts += 1
                        self._swap(selector, worker)
                if queue and not busy and self._failed_starts > 3 * self.size:
                    while queue:
                        outcomes[queue.popleft()] = SandboxOutcome(False, error="workers failed to start")
        finally:
            selector.close()
        return outcomes  # type: ignore[return-value]

    @staticmethod
    def _receive(worker: _Worker) -> list:
        try:
            return worker.receive()
        except (OSError, EOFError, pickle.UnpicklingError, ValueError):
            return [None]

    def _swap(self, selector: selectors.BaseSelector, worker: _Worker) -> None:
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(worker.process.stdout)
        self._replace(worker)
        fresh = self._workers[-1]
        selector.register(fresh.process.stdout, selectors.EVENT_READ, fresh)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for worker in self._workers:
                worker.kill()
            self._workers = []


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> WorkerPool:
    """The shared pool (created on first use; workers start lazily and are replaced as needed)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._closed:
            _pool = WorkerPool()
        return _pool


def start_workers(timeout: float = STARTUP_TIMEOUT) -> int:
    """Start the shared pool's workers and wait until they are ready (a worker takes a second or two to
    import sympy and warm up). Optional: the first batch starts them anyway, but a trainer can call this
    at start-up so its first reward is not slower than the rest. Returns the number of ready workers.

    Example:
        >>> from ladder_hf.verifier import start_workers
        >>> start_workers() >= 1  # doctest: +SKIP
        True
    """
    return get_pool().start(timeout)


def shutdown() -> None:
    """Stop the shared worker pool (a new one starts on next use). Registered with ``atexit``."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None


atexit.register(shutdown)


def run_sandboxed(fn: Callable, args_list: Sequence[tuple], timeout: float = DEFAULT_TIMEOUT) -> list[SandboxOutcome]:
    """Run ``fn(*args)`` for each args tuple in worker processes, in parallel, with a hard timeout each.

    ``fn`` must be a top-level function of an importable module; arguments and return value must
    pickle. Never raises for a bad item and never hangs: a timed-out item's worker is killed and
    replaced and the item reported as ``SandboxOutcome(ok=False, error="timeout after 2s")``.

    Example:
        >>> outcomes = run_sandboxed(divmod, [(7, 2), (1, 0)])  # doctest: +SKIP
        >>> outcomes[0].value, outcomes[1].error  # doctest: +SKIP
        ((3, 1), 'ZeroDivisionError: integer division or modulo by zero')
    """
    if not args_list:
        return []
    return get_pool().run(fn, args_list, timeout)

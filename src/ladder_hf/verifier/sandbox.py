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
from enum import Enum
from typing import Any

DEFAULT_TIMEOUT = 2.0
_HEADER = struct.Struct("<Q")
HARD_GRACE_SECONDS = 1.0  # after a task's own timeout, the parent waits this long before killing it
SLOW_TASK_SECONDS = 0.1  # tasks slower than this on average are sent one at a time
STARTUP_TIMEOUT = 120.0  # a fresh worker imports sympy/numpy/mpmath: slow on a loaded machine


class SandboxFailure(Enum):
    """Why a sandboxed call has no value (:attr:`SandboxOutcome.failure`)."""

    TIMEOUT = "timeout"  # ran past its limit: interrupted in the worker, or the worker killed
    WORKER_DIED = "worker died"  # the worker exited while running it (a crash, the memory cap in C code)
    CANNOT_SEND = "cannot send"  # the task or its arguments do not pickle
    CANNOT_LOAD = "cannot load"  # the worker could not unpickle it (fn's module does not import there)
    RAISED = "raised"  # the task raised an exception; SandboxOutcome.exception names its type
    NO_WORKERS = "no workers"  # the workers failed to start


@dataclass(frozen=True)
class SandboxOutcome:
    """What happened to one sandboxed call: ``ok`` and its ``value``, or an ``error`` description, with
    the kind of ``failure`` and, for a task that raised, the ``exception``'s type name.

    Example:
        >>> SandboxOutcome(False, error="ZeroDivisionError: division by zero",
        ...                failure=SandboxFailure.RAISED, exception="ZeroDivisionError").ok
        False
    """

    ok: bool
    value: Any = None
    error: str = ""
    failure: SandboxFailure | None = None
    exception: str = ""  # type name of the exception a task raised ("ZeroDivisionError")


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
    write_frames(stream, [payload])


def write_frames(stream, payloads: list[bytes]) -> None:
    """Several frames in one write (one wake-up of the reader)."""
    view = memoryview(b"".join(_HEADER.pack(len(p)) + p for p in payloads))
    while view:  # unbuffered pipes may take a large write in pieces
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


_READY = ("ready", None)  # a fresh worker has imported the verifier and warmed up
_STARTED = ("started", None)  # a worker has loaded a chunk: the clock of its first task starts


def _outcome(message: tuple) -> SandboxOutcome:
    """A task's result frame: ``("ok", value)`` or ``("err", (failure, exception type name, description))``."""
    status, payload = message
    if status == "ok":
        return SandboxOutcome(True, payload)
    failure, exception, error = payload
    return SandboxOutcome(False, error=error, failure=SandboxFailure(failure), exception=exception)


def _failed(failure: SandboxFailure, error: str) -> SandboxOutcome:
    return SandboxOutcome(False, error=error, failure=failure)


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


@dataclass
class _Chunk:
    """The tasks sent to one worker in one frame; they come back one frame each, so each has its own clock."""

    pending: deque  # indices still to be answered, in order
    deadline: float  # hard deadline of the current task (of loading the chunk, until started)
    started: bool = False  # the worker has loaded the chunk: the first task's clock runs
    clock: float = 0.0  # when the current task's clock started


class _Batch:
    """The state of one :meth:`WorkerPool.run`: tasks still queued, the chunk each busy worker holds,
    the outcomes so far, and how long answered tasks took (which sets the chunk size)."""

    def __init__(self, fn: Callable, args: list[tuple], limits: list[float]):
        self.fn, self.args, self.limits = fn, args, limits
        self.outcomes: list[SandboxOutcome | None] = [None] * len(args)
        self.queue = deque(range(len(args)))
        self.busy: dict[_Worker, _Chunk] = {}
        self.seconds, self.answered = 0.0, 0
        self.suspects: set[int] = set()  # tasks pending in a chunk whose worker was lost: sent alone

    def mean_seconds(self) -> float | None:
        return self.seconds / self.answered if self.answered else None

    def fail(self, index: int, failure: SandboxFailure, error: str) -> None:
        self.outcomes[index] = _failed(failure, error)

    def requeue(self, indices) -> None:
        """Put tasks back at the front of the queue, in order."""
        self.queue.extendleft(reversed(indices))

    def lost(self, pending: deque, failure: SandboxFailure, error: str) -> None:
        """A worker was killed or died with ``pending`` unanswered. A worker holds the results of quick
        tasks for a moment (see ``_worker.FLUSH_SECONDS``), so any of them may have been the one running:
        alone, it was; otherwise each goes back to the queue as a suspect, to be run alone next time."""
        if len(pending) == 1:
            self.fail(pending[0], failure, error)
            return
        self.suspects.update(pending)
        self.requeue(pending)

    def report_unpicklable(self, chunk: list[int], err: Exception) -> None:
        """A chunk did not pickle: report the tasks that do not, send the others back to the queue."""
        retry = []
        for index in chunk:
            problem = _pickle_problem(self.fn, self.args[index])
            if problem:
                self.fail(index, SandboxFailure.CANNOT_SEND, f"cannot send task: {problem}")
            else:
                retry.append(index)
        if len(retry) == len(chunk):  # pragma: no cover - the chunk failed as a whole only
            for index in retry:
                self.fail(index, SandboxFailure.CANNOT_SEND, f"cannot send task: {err}")
        else:
            self.requeue(retry)


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
                    if messages[0] == _READY:
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
        batch = _Batch(fn, args_list, limits)
        selector = selectors.DefaultSelector()
        try:
            for worker in self._workers:
                selector.register(worker.process.stdout, selectors.EVENT_READ, worker)
            while batch.queue or batch.busy:
                self._dispatch(batch, selector)
                for key, _ in selector.select(timeout=self._wait_seconds(batch)):
                    worker = key.data
                    for message in self._receive(worker):
                        if not self._handle(batch, selector, worker, message):
                            break  # the worker was replaced: nothing more to read from it
                now = time.monotonic()
                self._expire(batch, selector, now)
                self._replace_unstarted(selector, now)
                if batch.queue and not batch.busy and self._failed_starts > 3 * self.size:
                    while batch.queue:
                        batch.fail(batch.queue.popleft(), SandboxFailure.NO_WORKERS, "workers failed to start")
        finally:
            selector.close()
        return batch.outcomes  # type: ignore[return-value]

    def _dispatch(self, batch: _Batch, selector: selectors.BaseSelector) -> None:
        """Send a chunk of the queue to every ready worker that has none."""
        for worker in list(self._workers):
            if not batch.queue:
                return
            if worker.ready and worker not in batch.busy:
                self._send_chunk(batch, selector, worker)

    def _send_chunk(self, batch: _Batch, selector: selectors.BaseSelector, worker: _Worker) -> None:
        queue = batch.queue
        if queue[0] in batch.suspects:
            chunk = [queue.popleft()]
        else:
            size = self._chunk_size(len(queue), batch.mean_seconds())
            chunk = []
            while queue and len(chunk) < size and queue[0] not in batch.suspects:
                chunk.append(queue.popleft())
        try:
            worker.send(batch.fn, [batch.args[i] for i in chunk], [batch.limits[i] for i in chunk])
        except (pickle.PicklingError, AttributeError, TypeError) as err:
            batch.report_unpicklable(chunk, err)
            return
        except OSError:  # the worker died while idle: retry the tasks on its replacement
            batch.requeue(chunk)
            self._swap(selector, worker)
            return
        # until the worker says "started" (chunk unpickled, fn's module imported), the clock is the
        # generous startup one: a first import is not the task's time
        batch.busy[worker] = _Chunk(deque(chunk), time.monotonic() + STARTUP_TIMEOUT)

    def _wait_seconds(self, batch: _Batch) -> float:
        """How long to wait for messages: until the next deadline (a task's, or a worker's start), at most 1 s."""
        deadlines = [chunk.deadline for chunk in batch.busy.values()]
        deadlines += [w.started + STARTUP_TIMEOUT for w in self._workers if not w.ready]
        wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else 0.05
        return min(wait, 1.0)

    def _handle(self, batch: _Batch, selector: selectors.BaseSelector, worker: _Worker, message) -> bool:
        """Act on one message of ``worker`` (None: its output ended). False when the worker was replaced."""
        chunk = batch.busy.get(worker)
        if chunk is None:  # not running anything: it is starting
            if message == _READY:
                worker.ready = True
                self._failed_starts = 0
                return True
            self._failed_starts += 1  # died while starting
            self._swap(selector, worker)
            return False
        if message == _STARTED and not chunk.started:
            chunk.started, chunk.clock = True, time.monotonic()
            chunk.deadline = chunk.clock + _hard_limit(batch.limits[chunk.pending[0]])
            return True
        if message is None:
            batch.lost(chunk.pending, SandboxFailure.WORKER_DIED, f"worker died (exit code {worker.exit_code()})")
            del batch.busy[worker]
            self._swap(selector, worker)
            return False
        if not chunk.started:  # the chunk could not even be loaded: the same error for each task
            outcome = _outcome(message)
            for index in chunk.pending:
                batch.outcomes[index] = outcome
            chunk.pending.clear()
        else:
            batch.outcomes[chunk.pending.popleft()] = _outcome(message)
            now = time.monotonic()
            batch.seconds += now - chunk.clock
            batch.answered += 1
            chunk.clock = now
            if chunk.pending:  # the next task's clock
                chunk.deadline = now + _hard_limit(batch.limits[chunk.pending[0]])
        if chunk.pending:
            return True
        del batch.busy[worker]
        if worker.tasks >= self.config.max_tasks_per_worker:
            self._swap(selector, worker)
            return False
        return True

    def _expire(self, batch: _Batch, selector: selectors.BaseSelector, now: float) -> None:
        """Report each task past its hard deadline, send the rest of its chunk back, replace its worker."""
        for worker, chunk in list(batch.busy.items()):
            if now > chunk.deadline:
                del batch.busy[worker]
                limit = batch.limits[chunk.pending[0]]
                batch.lost(chunk.pending, SandboxFailure.TIMEOUT, f"timeout after {limit:g}s")
                self._swap(selector, worker)

    def _replace_unstarted(self, selector: selectors.BaseSelector, now: float) -> None:
        """Replace the workers that have not become ready within the startup time."""
        for worker in list(self._workers):
            if not worker.ready and now > worker.started + STARTUP_TIMEOUT:
                self._failed_starts += 1
                self._swap(selector, worker)

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

    def pids(self) -> list[int]:
        """Process ids of the current workers (e.g. to account for their CPU time).

        Example:
            >>> len(get_pool().pids()) <= get_pool().size  # doctest: +SKIP
            True
        """
        return [worker.process.pid for worker in list(self._workers)]

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

"""Worker process of :mod:`ladder_hf.verifier.sandbox` (``python -m ladder_hf.verifier._worker BYTES``).

Reads length-prefixed pickled ``(fn, [args, ...], [seconds, ...])`` chunks from stdin, answers
``("started", None)`` once the chunk is loaded, then one pickled ``("ok", value)`` or
``("err", (failure, exception type name, description))`` per task, in order (the results of quick
tasks are written a few at a time, at most ``FLUSH_SECONDS`` late), until stdin closes (the parent
exited). ``failure`` is the value of a
:class:`ladder_hf.verifier.sandbox.SandboxFailure`.
A chunk saves a round trip per task; the per-result frames let the parent time each task separately.

Each task runs under its own ``SIGALRM`` timer (this process's main thread, where signals work): a task
that runs out of time is interrupted and reported as ``"timeout after Ns"``, and the worker goes on
with the next one, so a wave of slow answers does not cost a process restart each. The parent's hard
deadline, a little later, still kills a worker stuck where Python cannot interrupt it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import time

from ladder_hf.verifier.sandbox import SandboxFailure

FLUSH_SECONDS = 0.02  # longest a finished task's result waits to be written with the next ones


class TaskTimeout(BaseException):
    """Raised in a task by its timer (a BaseException, so task code that catches Exception lets it pass)."""


def _on_alarm(signum, frame):
    raise TaskTimeout


def _limit_resources(memory_bytes: int, nice: int) -> None:
    import resource

    if memory_bytes > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nice > 0:
        with contextlib.suppress(OSError):
            os.nice(nice)


def main() -> None:
    memory_bytes = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    nice = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    # The protocol owns the original stdout; anything a task prints (even from C) goes to stderr.
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    protocol_in = sys.stdin.buffer

    from ladder_hf.verifier import core  # warm: sympy, numpy, mpmath, lark
    from ladder_hf.verifier.parsing import parse_math
    from ladder_hf.verifier.sandbox import read_frame, write_frame, write_frames

    parse_math("x")  # build the scanner once
    core.warm_up()  # and run every numeric path, so the first batch does not pay for first uses
    _limit_resources(memory_bytes, nice)
    signal.signal(signal.SIGALRM, _on_alarm)
    write_frame(protocol_out, pickle.dumps(("ready", None)))
    while True:
        frame = read_frame(protocol_in)
        if frame is None:
            return
        try:
            fn, chunk, limits = pickle.loads(frame)  # imports fn's module on first use
        except BaseException as err:
            error = f"cannot load task: {type(err).__name__}: {err}"[:400]
            write_frame(protocol_out, _error(SandboxFailure.CANNOT_LOAD, type(err).__name__, error))
            continue
        # the per-task timeout starts now; each result written restarts it for the next task of the chunk
        write_frame(protocol_out, pickle.dumps(("started", None)))
        # Results of quick tasks are held for up to FLUSH_SECONDS and written together: one parent
        # wake-up per flush instead of per task (the parent shares the cores with the workers). The
        # parent's clock for the task under way is then early by at most FLUSH_SECONDS, far inside the
        # grace of its hard deadline.
        held, flushed = [], time.monotonic()
        for args, limit in zip(chunk, limits, strict=True):
            held.append(_run_one(fn, args, limit))
            if time.monotonic() - flushed >= FLUSH_SECONDS:
                write_frames(protocol_out, held)
                held, flushed = [], time.monotonic()
        if held:
            write_frames(protocol_out, held)


def _run_one(fn, args, limit: float = 0.0) -> bytes:
    try:
        if limit > 0:
            signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            value = fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return pickle.dumps(("ok", value), protocol=pickle.HIGHEST_PROTOCOL)
    except TaskTimeout:
        return _error(SandboxFailure.TIMEOUT, "", f"timeout after {limit:g}s")
    except MemoryError:
        return _error(SandboxFailure.RAISED, "MemoryError", "MemoryError: memory limit exceeded")
    except BaseException as err:  # report everything; the parent decides
        name = type(err).__name__
        try:
            return _error(SandboxFailure.RAISED, name, f"{name}: {str(err)[:300]}")
        except MemoryError:
            return _error(SandboxFailure.RAISED, "MemoryError", "MemoryError")


def _error(failure: SandboxFailure, exception: str, description: str) -> bytes:
    # plain strings on the wire: the parent rebuilds the enum (see sandbox._outcome)
    return pickle.dumps(("err", (failure.value, exception, description)))


if __name__ == "__main__":
    main()

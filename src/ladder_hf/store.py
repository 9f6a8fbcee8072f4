"""Runs on disk: one resumable JSONL store and one atomic writer, used by every long job.

Variant trees (``nodes.jsonl``), evaluation runs (``completions.jsonl``), TTRL (``results.jsonl``) and
the demo all keep their progress in append-only JSONL files, so a run that is killed loses at most the
line it was writing, and a rerun picks up where it stopped. The rules, in one place:

* **A cut last line** (no trailing newline: the process died mid-write) is not a row. Reading ignores
  it; the first append cuts it off the file before writing, so the next row starts on a clean line.
* **Reads never write.** :func:`read_jsonl` and :meth:`JsonlStore.read` only read.
* **A complete line that is not JSON** is damage nobody should build on: reading raises
  :class:`CorruptFileError` naming the file and line, rather than dropping data silently.
* **Whole files** (configs, summaries, rewritten JSONL, parquet) are written to a temporary file in the
  same folder, synced, then renamed over the target: readers see the old file or the new one, never
  half of one.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.jsonl")
    >>> store = JsonlStore(path)
    >>> store.append([{"id": "a"}, {"id": "b"}])
    >>> with open(path, "a") as f:
    ...     _ = f.write('{"id": "c"')  # a run killed mid-write
    >>> [row["id"] for row in store.read()]
    ['a', 'b']
    >>> store.append({"id": "c"})
    >>> [row["id"] for row in read_jsonl(path)]
    ['a', 'b', 'c']
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike


class CorruptFileError(ValueError):
    """A complete line of a JSONL file is not valid JSON (names the file and the line)."""


def _parse_lines(data: bytes, path: PathLike) -> list[dict]:
    end = data.rfind(b"\n") + 1  # whatever follows the last newline is a cut line: not a row
    rows = []
    for number, line in enumerate(data[:end].decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise CorruptFileError(f"{path}, line {number}: not valid JSON ({err.msg})") from None
    return rows


def read_jsonl(path: PathLike) -> list[dict]:
    """The rows of a JSONL file (``[]`` when it does not exist), without a cut last line. Never writes.

    Raises:
        CorruptFileError: a complete line is not JSON.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return _parse_lines(data, path)


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = "") -> Iterator[str]:
    """A temporary path next to ``path``; when the block ends without an error it replaces ``path``
    (a file or a folder) in one rename. For writers that want a path (parquet, ``save_pretrained``).

    Example:
        >>> import tempfile, os
        >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
        >>> with atomic_path(target) as tmp:
        ...     _ = open(tmp, "w").write("done")
        >>> open(target).read()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # the writer creates it (a file or a folder)
    try:
        yield tmp
        if os.path.isdir(tmp) and path.is_dir():
            # a folder cannot be renamed over a non-empty one: move the old one aside first
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: PathLike, data: str | bytes) -> None:
    """Write a whole file so that readers see the old content or the new, never a mix."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: PathLike, obj: Any, **dumps_kwargs: Any) -> None:
    """:func:`atomic_write` of ``obj`` as indented JSON (UTF-8, trailing newline)."""
    dumps_kwargs.setdefault("indent", 2)
    dumps_kwargs.setdefault("ensure_ascii", False)
    atomic_write(path, json.dumps(obj, **dumps_kwargs) + "\n")


def _lines(rows: Iterable[Mapping]) -> str:
    return "".join(json.dumps(row if isinstance(row, dict) else dict(row), ensure_ascii=False) + "\n" for row in rows)


def write_jsonl(path: PathLike, rows: Iterable[Mapping]) -> None:
    """Replace a JSONL file with ``rows``, atomically."""
    atomic_write(path, _lines(rows))


class JsonlStore:
    """An append-only JSONL file that survives being killed mid-write (see the module docstring).

    ``sync=True`` (the default) forces each append to disk before returning, for rows that cost
    minutes of compute each; cheap rows can pass ``sync=False``.
    """

    def __init__(self, path: PathLike, sync: bool = True):
        self.path = Path(path)
        self.sync = sync

    def __repr__(self) -> str:
        return f"JsonlStore({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> list[dict]:
        """All complete rows, in file order. Never writes."""
        return read_jsonl(self.path)

    def _repair(self) -> None:
        # cut a line left half-written by a killed run, so the append starts on a clean line (checked on
        # every append: one byte read unless there is something to cut)
        try:
            with open(self.path, "r+b") as f:
                size = f.seek(0, os.SEEK_END)
                if size == 0:
                    return
                f.seek(size - 1)
                if f.read(1) == b"\n":
                    return
                f.seek(0)
                data = f.read()
                f.truncate(data.rfind(b"\n") + 1)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, rows: Mapping | Iterable[Mapping]) -> None:
        """Append one row or several (written in one call, so a batch lands whole or cut at the end)."""
        payload = _lines([rows] if isinstance(rows, Mapping) else rows)
        if not payload:
            return
        self._repair()
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(payload)
            if self.sync:
                f.flush()
                os.fsync(f.fileno())

    def rewrite(self, rows: Iterable[Mapping]) -> None:
        """Replace the whole file atomically (e.g. after marking rows)."""
        write_jsonl(self.path, rows)

"""Reading and validating a large file in a worker process while the importer writes to the store.

Validation is pure Python and the store's inserts are mostly the database's own C code, so on a machine
with two cores the two halves run side by side and a large import takes about as long as the slower half
instead of the sum. The worker is ``python -m narcotrack.ingest.pipeline``: it gets plain data (the path,
the header mapping, the organisation table) on stdin and sends validated chunks back on stdout. A pipe's
small buffer keeps memory flat, since the worker cannot run more than a chunk ahead of the writer. (A
separate interpreter rather than ``multiprocessing`` so that the caller's own script is never re-run in
the worker.) Small files are validated in-process, where starting a worker would cost more than it saves.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import narcotrack
from narcotrack import errors
from narcotrack.ingest.formats import produce
from narcotrack.ingest.records import Chunk, Context

PARALLEL_MIN_BYTES = 4 << 20  # plain CSV; compressed and XLSX files hold ~8x more rows per byte
STOP_SECONDS = 10


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while millions of short tuples are made.

    The rows are tuples, lists and strings that never form cycles, but their sheer number makes the
    collector run over and over; pausing it makes validation about 1.6x faster. Reference counting
    still frees everything as usual, and the collector is restored (and run once) afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(1)


def want_parallel(path: Path, kind: str) -> bool:
    """Use a worker when the file is large enough and there is a second core to run it on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    size = path.stat().st_size * (1 if kind == "csv" else 8)
    return cores > 1 and size >= PARALLEL_MIN_BYTES and bool(sys.executable)


def chunks(
    path: Path, fmt: str, positions: dict[str, int], ctx: Context, *, parallel: bool
) -> Iterator[Chunk]:
    """Validated chunks of the file, from this process or from a worker."""
    if not parallel:
        yield from produce(path, fmt, positions, ctx)
        return
    env = dict(os.environ)
    package_root = str(Path(narcotrack.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "narcotrack.ingest.pipeline"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            try:
                pickle.dump((Path(path).resolve(), fmt, positions, ctx), proc.stdin, pickle.HIGHEST_PROTOCOL)
                proc.stdin.close()
            except OSError:
                raise _died(proc, stderr) from None
            while True:
                try:
                    kind, payload = pickle.load(proc.stdout)
                except EOFError:
                    raise _died(proc, stderr) from None
                if kind == "chunk":
                    yield payload
                elif kind == "done":
                    return
                else:
                    raise _error(payload)
        finally:
            proc.stdout.close()  # a worker still writing gets a broken pipe and stops
            try:
                proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _died(proc: subprocess.Popen[bytes], stderr: Any) -> errors.NarcotrackError:
    try:
        proc.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    stderr.seek(0)
    tail = stderr.read().decode("utf-8", "replace").strip().splitlines()[-1:]
    return errors.NarcotrackError(
        "the import's reader process stopped unexpectedly" + (f": {tail[0]}" if tail else "")
    )


def _error(payload: tuple[str, str]) -> errors.NarcotrackError:
    cls = getattr(errors, payload[0], None)
    if not (isinstance(cls, type) and issubclass(cls, errors.NarcotrackError)):
        cls = errors.NarcotrackError
    return cls(payload[1])


def _work() -> None:
    """Worker body: stream chunks to the importer; report failures as (class name, message)."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but pickles may reach the pipe
    gc.disable()  # see gc_paused; this process ends with the import

    def send(message: Any) -> None:
        pickle.dump(message, out, pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        path, fmt, positions, ctx = pickle.load(sys.stdin.buffer)
        for chunk in produce(path, fmt, positions, ctx):
            send(("chunk", chunk))
        send(("done", None))
    except errors.NarcotrackError as exc:
        send(("error", (type(exc).__name__, str(exc))))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the importer stopped listening (it failed or was interrupted): nothing to report
    except Exception as exc:  # a bug: still give the importer a message rather than a silent death
        send(("error", ("NarcotrackError", f"the import's reader failed: {type(exc).__name__}: {exc}")))


if __name__ == "__main__":
    _work()

"""The real ``tracker`` command in a child process of its own, without paying its imports
every time.

``python -m tracker`` spends about a second of CPU importing SQLAlchemy, SQLModel, pydantic
and boto3 before it does anything; the suite runs it a few hundred times. Here a zygote (the
standard library's ``forkserver``, one per test worker) imports those once, and each run is a
fork of it that executes ``python -m MODULE ARGS`` exactly as the interpreter would
(``runpy.run_module(..., run_name="__main__")``) with its own environment, working directory,
stdout and stderr (files, read when it ends), exit code and signals: a SIGKILL kills that
child only, an ``atexit`` hook runs at its exit, ``RLIMIT_FSIZE`` limits that child only.

What this does not cover, and stays a real ``subprocess`` where a test is about it: the
interpreter's own start-up (which modules ``tracker --help`` imports, the installed entry
point, an environment without ``PYTHONPATH``). The zygote starts clean (a fresh interpreter,
no threads, no moto, no test's monkeypatching) and each child replaces its whole
environment with the one given, as ``subprocess`` does.
"""

from __future__ import annotations

import atexit
import gc
import io
import multiprocessing
import os
import runpy
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Sequence
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Set to 1 to run every process these helpers start as a new interpreter (to compare).
FRESH = "TRACKER_TEST_FRESH"
# What the package's commands import inside functions (tracker/ keeps them off --help's
# path): migrations, bill files, charts, the daemon, the web server, the demo's moto.
LAZY_IMPORTS = [
    "alembic", "alembic.command", "alembic.config", "alembic.runtime.migration",
    "alembic.script", "mako.template", "pandas", "pyarrow", "pyarrow.parquet",
    "matplotlib.figure", "matplotlib.patches", "matplotlib.backends.backend_agg", "jinja2",
    "apscheduler.schedulers.blocking", "apscheduler.executors.pool",
    "apscheduler.triggers.cron", "apscheduler.triggers.interval", "uvicorn", "moto.server",
    "moto.sagemaker.models", "moto.s3.models",
]  # fmt: skip
# Every module of the package, and so what they import at their top (SQLAlchemy, boto3, ...),
# but the Alembic scripts, which only Alembic runs; what they import later; then botocore's
# data files, parsed (tests/zygote.py). Not the module a child runs with ``-m`` (runpy
# warns when it is imported already). An import that fails here is left to the child.
PRELOAD = [
    *sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO / "tracker").rglob("*.py")
        if path.name != "__main__.py" and "migrations" not in path.relative_to(REPO).parts[:-1]
    ),
    *LAZY_IMPORTS,
    "tests.zygote",
]

_context: ForkServerContext | None = None
# The zygote imports with the parent's sys.path of the moment it starts: this one, as the
# session began, not one a test has prepended to.
_SYS_PATH = list(sys.path)


def _forkserver() -> ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        saved = sys.path[:]
        sys.path[:] = _SYS_PATH
        try:
            forkserver.ensure_running()
        finally:
            sys.path[:] = saved
        _context = context
    return _context


def _child(module: str, argv: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    """In the forked child: become ``python -m module *argv`` and exit as it would."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        opened = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.dup2(opened, fd)
        os.close(opened)
    # As the interpreter makes them for files and pipes (UTF-8 here; stderr line-buffered).
    sys.stdout = _text_stream(1, "strict", line_buffering=False)
    sys.stderr = _text_stream(2, "backslashreplace", line_buffering=True)
    sys.argv = [module, *argv]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:  # as the interpreter does: the traceback on stderr, exit 1
        traceback.print_exc()
        code = 1
    try:
        _finalize()
    finally:
        os._exit(code)


def _finalize() -> None:
    """What the interpreter does at exit, in its order, for what a run leaves behind: join
    the threads, run the ``atexit`` hooks, then what freeing every object does: close each
    SQLite connection (the last one checkpoints the WAL into the database file) and flush
    each file still open. ``os._exit`` alone would skip all of it."""
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    gc.collect()
    for thing in gc.get_objects():
        try:
            if isinstance(thing, sqlite3.Connection):
                thing.close()
            elif isinstance(thing, io.IOBase) and not thing.closed and thing.writable():
                thing.flush()
        except Exception:  # as at exit: a failure to close one thing does not stop the rest
            continue


def _text_stream(fd: int, errors: str, *, line_buffering: bool) -> io.TextIOWrapper:
    binary = io.BufferedWriter(io.FileIO(fd, "w", closefd=False))
    return io.TextIOWrapper(binary, encoding="utf-8", errors=errors, line_buffering=line_buffering)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


class Child:
    """A running ``python -m MODULE`` (a subset of ``subprocess.Popen``): ``pid``, ``poll``,
    ``wait``, ``send_signal``, ``terminate``, ``kill``, and ``stdout``/``stderr`` whose
    ``read()`` waits for the exit, as reading a pipe to its end does. ``output``: append
    both to that file instead (``stdout=file, stderr=file``). ``fresh`` (or
    ``TRACKER_TEST_FRESH=1`` in the environment): a new interpreter instead of a fork."""

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
        output: Path | None = None,
        fresh: bool = False,
    ) -> None:
        self.args = [sys.executable, "-m", module, *args]
        self._dir = tempfile.TemporaryDirectory(prefix="tracker-child-")
        self._out = str(output) if output else os.path.join(self._dir.name, "stdout")
        self._err = str(output) if output else os.path.join(self._dir.name, "stderr")
        for path in (self._out, self._err):
            Path(path).touch()
        full_env = dict(os.environ if env is None else env)
        folder = str(cwd or REPO)
        self._popen: subprocess.Popen[bytes] | None = None
        self._process: BaseProcess | None = None
        if fresh or os.environ.get(FRESH) == "1":
            with open(self._out, "ab") as out, open(self._err, "ab") as err:
                self._popen = subprocess.Popen(self.args, stdout=out, stderr=err, env=full_env,
                                               cwd=folder)  # fmt: skip
            self.pid = self._popen.pid
        else:
            self._process = _forkserver().Process(
                target=_child, args=(module, list(args), full_env, folder, self._out, self._err)
            )
            self._process.start()
            self.pid = self._process.pid  # type: ignore[assignment]
        self.returncode: int | None = None
        self.stdout = _Output(self, self._out)
        self.stderr = _Output(self, self._err)

    def poll(self) -> int | None:
        if self.returncode is None:
            if self._popen is not None:
                self.returncode = self._popen.poll()
            elif self._process is not None and not self._process.is_alive():
                self._process.join()
                self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if self._popen is not None:
                self.returncode = self._popen.wait(timeout)
            elif self._process is not None:
                self._process.join(timeout)
                if self._process.exitcode is None:
                    raise subprocess.TimeoutExpired(self.args, timeout or 0)
                self.returncode = self._process.exitcode
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()
            raise
        return self.stdout.read(), self.stderr.read()

    def close(self) -> None:
        if self.poll() is None:
            self.kill()
            self.wait()
        self._dir.cleanup()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _Output:
    def __init__(self, child: Child, path: str) -> None:
        self._child, self._path = child, path

    def read(self) -> str:
        self._child.wait()
        with open(self._path, encoding="utf-8") as file:
            return file.read()


def run_module(
    module: str,
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float = 120,
    fresh: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
    text=True, ...)``, forked from the zygote (``fresh``: a new interpreter, as that)."""
    with Child(module, args, env=env, cwd=cwd, fresh=fresh) as child:
        stdout, stderr = child.communicate(timeout)
        return subprocess.CompletedProcess(child.args, child.wait(), stdout, stderr)

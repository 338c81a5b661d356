"""Project scripts run as `python script.py ...` runs them, without paying for the interpreter's imports.

A script run costs ~4 s on 2 cores, nearly all of it importing pandas, scikit-learn, scipy, matplotlib and
reportlab; the end-to-end tests run scripts a few hundred times. multiprocessing's forkserver imports those
libraries once, in a server process that does nothing else, and forks each run from it: the child gets the
script's own argv, working folder, environment, stdin (/dev/null), stdout, stderr and exit status (a
signal's negative number, as subprocess reports it), and unwinds as an interpreter does: SystemExit's code,
a traceback and 1 for an uncaught exception, non-daemon threads joined. The project's own modules are not
preloaded: each run imports them afresh, so nothing one run leaves behind reaches the next.

What a forked run cannot show (what the interpreter imports at start, how long a cold start takes, cron's
exact command line) is tested with real interpreters: `real=True` on Project.run, or
DRS_TEST_REAL_PROCESSES=1 to run every script in a fresh interpreter.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

# The third-party modules the stages import: what makes a cold start slow.
PRELOAD = [
    "numpy",
    "pandas",
    "pyarrow.csv",
    "pyarrow.compute",
    "scipy.stats",
    "sklearn.compose",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "matplotlib.figure",
    "reportlab.platypus",
    "reportlab.pdfgen.canvas",
    "requests",
]
REAL_ENV = "DRS_TEST_REAL_PROCESSES"

_context = None


def forked_runs_enabled() -> bool:
    return os.environ.get(REAL_ENV, "") in ("", "0")


def _forkserver():
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        _context = context
    return _context


def _child(script: str, args: list[str], cwd: str, env: dict, out: str, err: str) -> None:
    """In the forked child: become `python script args...` run from `cwd` with `env`."""
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.close(nothing)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).parent))  # as the interpreter puts the script's folder first
    try:
        runpy.run_path(script, run_name="__main__")  # SystemExit's code becomes the exit status
    finally:
        atexit._run_exitfuncs()  # logging's flush and close, as at an interpreter's exit


def run_script(command: list[str], cwd: Path, env: dict, timeout: float | None = None) -> subprocess.CompletedProcess:
    """subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout), where
    command is [python, script, *args], run in a child of the preloaded forkserver."""
    _, script, *args = command
    with tempfile.TemporaryDirectory(prefix="drs-run-") as folder:
        out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        process = _forkserver().Process(target=_child, args=(script, args, str(cwd), dict(env), out, err))
        process.start()
        process.join(timeout)
        timed_out = process.exitcode is None
        if timed_out:
            process.kill()
            process.join()
        status = process.exitcode
        process.close()
        stdout, stderr = (_read(path) for path in (out, err))
    if timed_out:
        raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(command, status, stdout, stderr)


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return ""

"""The forked script runs the end-to-end tests use behave as a new interpreter does, on the points the tests read."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from script_runner import run_script

SCRIPT = """
import os, signal, sys, threading, time
from pathlib import Path

what = sys.argv[1]
print("cwd", Path.cwd(), "argv", sys.argv[1:], "env", os.environ.get("DRS_PROBE"), "path0", sys.path[0])
print("to stderr", file=sys.stderr)
if what == "exit":
    sys.exit(int(sys.argv[2]))
if what == "message":
    sys.exit("a message")
if what == "raise":
    raise ValueError("boom")
if what == "kill":
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
if what == "thread":
    threading.Thread(target=lambda: (time.sleep(0.5), print("thread done", flush=True))).start()
if what == "atexit":
    import logging
    handler = logging.FileHandler(sys.argv[2])
    logging.getLogger("probe").addHandler(handler)
    logging.getLogger("probe").warning("logged")
if what == "sleep":
    time.sleep(60)
if what == "stdin":
    print("stdin", repr(sys.stdin.read()))
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "scripts" / "probe.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def both(script, tmp_path, *args, **kwargs):
    """The same run forked and in a new interpreter."""
    command = [sys.executable, str(script), *args]
    env = {"PATH": "/usr/bin:/bin", "DRS_PROBE": "seen"}
    forked = run_script(command, tmp_path, env, **kwargs)
    real = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, **kwargs)
    return forked, real


@pytest.mark.parametrize(
    "args",
    [("exit", "0"), ("exit", "3"), ("message",), ("kill",), ("thread",), ("stdin",)],
    ids=lambda args: "-".join(args),
)
def test_a_forked_run_answers_as_a_new_interpreter(script, tmp_path, args):
    forked, real = both(script, tmp_path, *args)
    assert (forked.returncode, forked.stdout, forked.stderr) == (real.returncode, real.stdout, real.stderr)
    assert f"cwd {tmp_path}" in forked.stdout and "env seen" in forked.stdout
    assert f"path0 {script.parent}" in forked.stdout


def test_an_uncaught_exception_is_status_1_with_its_traceback(script, tmp_path):
    forked, real = both(script, tmp_path, "raise")
    assert forked.returncode == real.returncode == 1
    assert "ValueError: boom" in forked.stderr and "Traceback" in forked.stderr


def test_handlers_are_flushed_at_exit(script, tmp_path):
    log = tmp_path / "probe.log"
    forked = run_script([sys.executable, str(script), "atexit", str(log)], tmp_path, {"PATH": "/usr/bin:/bin"})
    assert forked.returncode == 0 and log.read_text() == "logged\n"


def test_a_run_past_its_timeout_is_killed_and_raised_as_subprocess_does(script, tmp_path):
    # The first run starts the forkserver (seconds of imports): the timed run is a fork of it.
    assert run_script([sys.executable, str(script), "exit", "0"], tmp_path, {"PATH": "/usr/bin:/bin"}).returncode == 0
    with pytest.raises(subprocess.TimeoutExpired) as expired:
        run_script([sys.executable, str(script), "sleep"], tmp_path, {"PATH": "/usr/bin:/bin"}, timeout=3)
    assert "to stderr" in expired.value.stderr

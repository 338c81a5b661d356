"""Inputs that used to cost unbounded time or answer wrongly, in process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import PYTHON, ROOT

from drs.config import ConfigError, load_config, load_operations
from drs.ingest import MAX_COLUMNS, InvalidFile, read_validated_csv
from drs.storage import fingerprint_files, read_json

HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited"


def test_a_header_with_more_columns_than_allowed_is_refused_before_parsing():
    # 40,000 columns took 94 s in the quadratic duplicate check; it is refused on the header alone.
    wide = HEADER + "".join(f",extra{i}" for i in range(MAX_COLUMNS)) + "\n" + "a,1,2,3,0" + ",0" * MAX_COLUMNS + "\n"
    with pytest.raises(InvalidFile, match=f"line 1: {MAX_COLUMNS + 5} columns, more than the {MAX_COLUMNS}"):
        read_validated_csv(wide.encode())


def test_a_header_without_an_end_is_refused_unparsed():
    with pytest.raises(InvalidFile, match="line 1: the header is longer than"):
        read_validated_csv(("x" * (300 * 1024)).encode())


def test_many_extra_columns_within_the_limit_are_dropped_and_a_late_repeat_is_found():
    extra = "".join(f",extra{i}" for i in range(MAX_COLUMNS - 10))
    frame = read_validated_csv(f"{HEADER}{extra}\na,1,2,3,0{',0' * (MAX_COLUMNS - 10)}\n".encode())
    assert list(frame.columns)[-1] == "exited" and len(frame) == 1
    with pytest.raises(InvalidFile, match="duplicate column name 'extra5'"):
        read_validated_csv(f"{HEADER}{extra},extra5\na,1,2,3,0{',0' * (MAX_COLUMNS - 9)}\n".encode())


def test_an_edit_that_restores_size_and_mtime_is_read_again(tmp_path):
    # every label flipped, size and mtime put back, used to read as "no new data".
    path = tmp_path / "data.csv"
    path.write_text(HEADER + "\na,1,2,3,0\n")
    known = fingerprint_files([path])
    assert fingerprint_files([path], known) == known  # unchanged: the recorded hash is reused
    before = os.stat(path)
    path.write_text(HEADER + "\na,1,2,3,1\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = fingerprint_files([path], known)["data.csv"]
    assert again["size"] == known["data.csv"]["size"] and again["mtime_ns"] == known["data.csv"]["mtime_ns"]
    assert again["sha256"] != known["data.csv"]["sha256"]


def test_a_file_put_back_under_the_same_name_is_read_again(tmp_path):
    path, copy = tmp_path / "data.csv", tmp_path / "copy.csv"
    path.write_text(HEADER + "\na,1,2,3,0\n")
    known = fingerprint_files([path])
    copy.write_text(HEADER + "\na,1,2,3,1\n")
    shutil.copystat(path, copy)
    os.replace(copy, path)  # another inode, the same size and mtime
    assert fingerprint_files([path], known)["data.csv"]["sha256"] != known["data.csv"]["sha256"]


@pytest.mark.parametrize(
    ("textfile", "fragment"),
    [
        ("logs/history.jsonl", "must name a .prom file"),
        ("config.json", "must name a .prom file"),
        ("practicedata/drs.prom", "lies inside input_folder_path"),
        ("production_deployment/drs.prom", "lies inside prod_deployment_path"),
        ("logs/drs.prom", "lies inside log_folder_path"),
    ],
)
def test_a_metrics_textfile_that_would_overwrite_or_feed_the_pipeline_is_a_config_error(project, textfile, fragment):
    # pointed at the history it wiped it each tick, at the config it broke every later tick.
    project.write_config(metrics_textfile=textfile)
    with pytest.raises(ConfigError, match=fragment):
        load_config(project.config_path)
    # ... and the failed tick's own textfile is not written there either.
    assert load_operations(project.config_path)["metrics_textfile"] is None
    project.write_config(metrics_textfile="textfile/drs.prom")
    assert load_config(project.config_path).metrics_textfile == project.path("textfile", "drs.prom")
    assert load_operations(project.config_path)["metrics_textfile"] == project.path("textfile", "drs.prom")


def test_a_tick_refused_for_its_textfile_writes_no_textfile(project):
    project.write_config(metrics_textfile="production_deployment/drs.prom")
    result = project.run("fullprocess.py")
    assert result.returncode == 2 and "lies inside prod_deployment_path" in result.stderr
    assert not project.path("production_deployment", "drs.prom").exists()
    # A config error elsewhere still exports the failure to a textfile the config may use.
    project.write_config(metrics_textfile="textfile/drs.prom", max_categories="many")
    result = project.run("fullprocess.py")
    assert result.returncode == 2 and "drs_tick_exit_status 2" in project.path("textfile", "drs.prom").read_text()


def test_a_json_file_nested_too_deep_reads_as_empty(tmp_path):
    # a deeply nested alertstate.json stopped every alert for good (RecursionError).
    path = tmp_path / "alertstate.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert read_json(path) == {}
    path.write_text(json.dumps({"failed_ticks": 2}))
    assert read_json(path) == {"failed_ticks": 2}


def test_a_filepath_with_a_name_too_long_is_a_json_400(api_client):
    # a 300-character file name answered 500 (OSError from is_file).
    response = api_client.post("/prediction", json={"filepath": "testdata/" + "x" * 300 + ".csv"})
    assert response.status_code == 400 and "cannot be looked up" in response.get_json()["error"]


def test_a_binary_file_is_rejected_in_one_line_without_a_traceback(project):
    # pyarrow's invalid-row handler printed "Exception ignored ... UnicodeDecodeError" to stderr.
    project.path("practicedata", "binary.csv").write_bytes(HEADER.encode() + b"\n" + bytes(range(128, 256)) * 80)
    result = project.run("ingestion.py")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "Exception ignored" not in output
    assert "rejected binary.csv: line 2: not UTF-8 text" in output


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 1 << 20])
def test_utf8_is_checked_across_chunk_boundaries(chunk):
    from drs.ingest import _check_utf8

    text = "a,é\nü,€😀\n".encode()
    _check_utf8(text, chunk)  # characters cut by a chunk boundary are whole again in the next
    with pytest.raises(InvalidFile, match="line 3: not UTF-8 text"):
        _check_utf8(text + b"x\xe9y\n", chunk)


# Runs one tick in a fresh interpreter with the history's writer and the textfile's writer wrapped: each
# says whether the tick's lock was still held when it wrote (flock refuses a second open of the file).
LOCK_WHILE_WRITING = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from drs import history, tick_metrics
from drs.storage import LockBusy, exclusive_lock
lock_file = Path(sys.argv[3]) / "fullprocess.lock"
held = {}
def held_now():
    try:
        with exclusive_lock(lock_file):
            return False
    except LockBusy:
        return True
def wrap(owner, name, key):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        held[key] = held_now()
        return original(*args, **kwargs)
    setattr(owner, name, wrapper)
wrap(history.HistoryLog, "append", "history")
wrap(tick_metrics, "write_tick_metrics", "textfile")
import fullprocess
status = fullprocess.main(["--config", sys.argv[2]])
print(json.dumps({"status": status, **held}))
"""


def test_a_ticks_records_are_written_before_it_lets_the_lock_go(deployed):
    # a failing tick's history line landed after a later good tick's, its textfile after it too.
    config = deployed.write_config(metrics_textfile="textfile/drs.prom", input_folder_path="nowhere")
    result = subprocess.run(
        [PYTHON, "-c", LOCK_WHILE_WRITING, str(ROOT), str(config), str(deployed.path("production_deployment"))],
        capture_output=True,
        text=True,
        cwd=deployed.elsewhere,
        timeout=120,
    )
    written = json.loads(result.stdout.strip().splitlines()[-1])
    assert written == {"status": 1, "history": True, "textfile": True}, result.stderr


def hold_lock(path, pid: int, since: str):
    """Hold the tick's flock as a tick would, having written its pid and start into the file."""
    import fcntl

    handle = open(path, "w")  # noqa: SIM115 (closed by the caller)
    fcntl.flock(handle, fcntl.LOCK_EX)
    handle.write(f"{pid} {since}\n")
    handle.flush()
    return handle


def test_a_skipped_tick_names_the_holder_and_a_stale_holder_is_a_failure(deployed):
    # while one tick held the lock, every tick recorded "skipped" with exit 0, however long.
    import datetime as dt

    deployed.write_config(metrics_textfile="textfile/drs.prom")
    lock = deployed.path("production_deployment", "fullprocess.lock")
    recent = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
    with hold_lock(lock, 4242, recent):
        skipped = deployed.run("fullprocess.py")
    line = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert skipped.returncode == 0 and line["decision_code"] == "skipped"
    assert line["lock_holder"]["pid"] == 4242 and 0 <= line["lock_holder"]["age_seconds"] < 600
    assert "drs_tick_lock_held_seconds" in deployed.path("textfile", "drs.prom").read_text()
    stale = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S%z")
    with hold_lock(lock, 4242, stale):
        stuck = deployed.run("fullprocess.py")
    line = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert stuck.returncode == 1 and line["decision_code"] == "failed" and "Traceback" not in stuck.stderr
    assert "pid 4242" in stuck.stderr and "lock_stale_seconds 3600" in stuck.stderr
    assert line["lock_holder"]["age_seconds"] > 7000

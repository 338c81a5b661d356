"""Faults in the input folder: a bad file never stops the pipeline, and nothing outside the folder leaks.

Each fault is planted beside the deployed project's data and a cron tick (or
the ingestion stage) is run as cron would: it must exit 0, reject the bad
entry with a one-line reason (or skip a non-file) and ingest the others.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess

import pyarrow as pa
import pytest
from conftest import PYTHON, ROOT

from generate_data import generate

HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"
SECRET = "TOPSECRET-7f3a"


def last_record(project) -> dict:
    return json.loads(project.path("logs", "history.jsonl").read_text(encoding="utf-8").splitlines()[-1])


def ingested_detail(project) -> dict:
    return json.loads(project.path("ingesteddata", "ingestedfiles.json").read_text(encoding="utf-8"))


def add_good_file(project, name: str = "fresh.csv") -> None:
    """A valid new file, so that the tick has data to ingest beside the faulty entry."""
    generate(60, "practice", seed=41).to_csv(project.path("practicedata", name), index=False)


def assert_tick_went_on(result: subprocess.CompletedProcess, project, *, new_file: str | None = "fresh.csv") -> dict:
    """Exit 0, no traceback or logging error, the practice files (and the good new one) ingested."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    assert "unexpected error" not in output and "Traceback" not in output and "Logging error" not in output, output
    record = last_record(project)
    assert record["exit_status"] == 0 and "error" not in record
    ingested = project.path("ingesteddata", "ingestedfiles.txt").read_text(encoding="utf-8").split()
    assert {"dataset1.csv", "dataset2.csv"} <= set(ingested)
    if new_file:
        assert new_file in record["new_files"] and new_file in ingested
    return record


def everything_written(project, result: subprocess.CompletedProcess) -> str:
    """Every record, log and output a person or a report may read, as one text."""
    texts = [result.stdout, result.stderr]
    for folder in ("logs", "ingesteddata", "models", "production_deployment"):
        for path in project.path(folder).rglob("*"):
            if path.is_file() and path.suffix in (".jsonl", ".json", ".log", ".txt"):
                texts.append(path.read_text(encoding="utf-8"))
    return "\n".join(texts)


def test_a_repeated_column_name_is_rejected_and_the_tick_goes_on(deployed):
    deployed.path("practicedata", "twice.csv").write_text(
        HEADER.replace("\n", ",lastmonth_activity\n") + "a,1,2,3,0,4\n"
    )
    add_good_file(deployed)
    result = deployed.run("fullprocess.py")
    record = assert_tick_went_on(result, deployed)
    assert record["rejected_files"]["twice.csv"] == "duplicate column name 'lastmonth_activity'"


def test_a_file_name_that_is_not_utf8_is_rejected_under_a_printable_name(deployed):
    folder = os.fsencode(deployed.path("practicedata"))
    with open(os.path.join(folder, b"caf\xe9-export.csv"), "wb") as handle:  # a Latin-1 name, valid content
        handle.write((HEADER + "latin,1,2,3,0\n").encode())
    add_good_file(deployed)
    result = deployed.run("fullprocess.py")
    record = assert_tick_went_on(result, deployed)
    reason = "file name is not valid UTF-8 or holds control characters: rename it"
    assert record["rejected_files"] == {"caf\\xe9-export.csv": reason}
    assert ingested_detail(deployed)["rejected"] == {"caf\\xe9-export.csv": reason}
    # Every record is valid UTF-8 (read_text above would have raised), the log too.
    assert "caf\\xe9-export.csv" in deployed.path("logs", "fullprocess.log").read_text(encoding="utf-8")


def test_a_file_over_the_size_limit_is_rejected_unread(deployed):
    deployed.write_config(max_input_file_bytes=200_000)
    with open(deployed.path("practicedata", "huge.csv"), "wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    add_good_file(deployed)
    result = deployed.run("fullprocess.py")
    record = assert_tick_went_on(result, deployed)
    assert record["rejected_files"]["huge.csv"] == "67108864 bytes, over max_input_file_bytes 200000: not read"


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (6 * 1024**3, 6 * 1024**3))


def test_ingestion_never_reads_an_oversized_file(project):
    """A file of 1 TiB (sparse) cannot be read within 6 GiB of address space: ingestion must not try."""
    project.write_config(max_input_file_bytes=1024**2)
    with open(project.path("practicedata", "enormous.csv"), "wb") as handle:
        handle.truncate(1024**4)
    command = [PYTHON, str(ROOT / "ingestion.py"), "--config", str(project.config_path)]
    result = subprocess.run(
        command, cwd=project.elsewhere, capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory
    )
    assert result.returncode == 0, result.stderr
    assert ingested_detail(project)["rejected"] == {
        "enormous.csv": "1099511627776 bytes, over max_input_file_bytes 1048576: not read"
    }


def test_new_data_detection_does_not_hash_an_oversized_file(tmp_path):
    from drs.storage import fingerprint_files

    big, small = tmp_path / "big.csv", tmp_path / "small.csv"
    with open(big, "wb") as handle:
        handle.truncate(1024**4)  # hashing it would take many minutes
    small.write_text(HEADER)
    prints = fingerprint_files([big, small], max_bytes=1024)
    stat = big.stat()
    assert prints["big.csv"]["sha256"] == f"unread:{stat.st_size}:{stat.st_mtime_ns}"
    assert len(prints["small.csv"]["sha256"]) == 64
    assert fingerprint_files([big], max_bytes=1024) == {"big.csv": prints["big.csv"]}  # stable from tick to tick
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert fingerprint_files([big], max_bytes=1024)["big.csv"]["sha256"] != prints["big.csv"]["sha256"]


def test_a_file_that_vanishes_after_listing_is_left_out_of_detection(tmp_path):
    from drs.storage import fingerprint_files

    kept = tmp_path / "kept.csv"
    kept.write_text(HEADER)
    assert list(fingerprint_files([tmp_path / "gone.csv", kept])) == ["kept.csv"]


def test_a_file_that_vanishes_between_listing_and_reading_is_rejected(project, monkeypatch):
    from drs.ingest import merge_multiple_dataframe

    vanishing = project.path("practicedata", "vanishing.csv")
    vanishing.write_text(HEADER + "a,1,2,3,0\n")
    real_scandir = os.scandir

    def scandir_then_delete(folder):
        entries = list(real_scandir(folder))  # listed (the entry says it is a file) ...
        vanishing.unlink(missing_ok=True)  # ... and gone before it is read
        return iter(entries)

    monkeypatch.setattr(os, "scandir", scandir_then_delete)
    result = merge_multiple_dataframe(project.config())
    assert result.rejected == {"vanishing.csv": "vanished while being read"}
    assert sorted(result.ingested) == ["dataset1.csv", "dataset2.csv"]


def test_a_tick_survives_a_file_that_vanishes_after_listing(deployed):
    """The race in a real tick: the file goes right after the first listing of the input folder."""
    add_good_file(deployed)
    deployed.path("practicedata", "vanishing.csv").write_text(HEADER + "a,1,2,3,0\n")
    script = (
        "import os, runpy, sys\n"
        "real_scandir, target = os.scandir, sys.argv[1]\n"
        # An iterator that is also a context manager, as os.scandir's is (os.walk needs both).
        "class Listing:\n"
        "    def __init__(self, entries): self.entries = iter(entries)\n"
        "    def __iter__(self): return self\n"
        "    def __next__(self): return next(self.entries)\n"
        "    def __enter__(self): return self\n"
        "    def __exit__(self, *exc): return False\n"
        "    def close(self): pass\n"
        "def scandir(folder='.'):\n"
        "    entries = list(real_scandir(folder))\n"
        "    if os.path.exists(target):\n"
        "        os.unlink(target)\n"
        "    return Listing(entries)\n"
        "os.scandir = scandir\n"
        "sys.argv = [sys.argv[2], '--config', sys.argv[3]]\n"
        "sys.path.insert(0, os.path.dirname(sys.argv[0]))\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    result = subprocess.run(
        [
            PYTHON,
            "-c",
            script,
            str(deployed.path("practicedata", "vanishing.csv")),
            str(ROOT / "fullprocess.py"),
            str(deployed.config_path),
        ],
        cwd=deployed.elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_tick_went_on(result, deployed)  # fullprocess's sys.exit gives the subprocess the tick's exit code


def test_a_leftover_parsed_cache_of_any_shape_does_not_disturb_ingestion(project):
    import hashlib

    cache = project.path("ingesteddata", ".parsed", "v3")
    cache.mkdir(parents=True)
    sha = hashlib.sha256(project.path("practicedata", "dataset1.csv").read_bytes()).hexdigest()
    # A readable Arrow file under the hash of a real input, holding the wrong columns.
    wrong = pa.table({"unexpected": pa.array([1.0]), "__row_hash": pa.array([1], pa.uint64())})
    with pa.OSFile(str(cache / f"{sha}.arrow"), "wb") as sink, pa.ipc.new_file(sink, wrong.schema) as writer:
        writer.write_table(wrong)
    (cache / "garbage.arrow").write_bytes(b"not arrow")
    result = project.run("ingestion.py")
    assert result.returncode == 0, result.stderr
    assert ingested_detail(project)["files"]["dataset1.csv"]["rows"] == 350
    assert not project.path("ingesteddata", ".parsed").exists()


def test_a_link_to_outside_the_input_folder_is_refused_unread(deployed):
    outside = deployed.path("private")
    outside.mkdir()
    # Shaped so that a reader quoting the bad row would quote the secret.
    (outside / "secrets.csv").write_text(f"user\n{SECRET},x\n")
    (deployed.path("practicedata", "leak.csv")).symlink_to(outside / "secrets.csv")
    (deployed.path("practicedata", "etc.csv")).symlink_to("/etc/passwd")
    add_good_file(deployed)
    result = deployed.run("fullprocess.py")
    record = assert_tick_went_on(result, deployed)
    refused = "a link to outside the input folder: not read"
    assert record["rejected_files"] == {"etc.csv": refused, "leak.csv": refused}
    written = everything_written(deployed, result)
    assert SECRET not in written and "root:" not in written


def test_special_entries_are_skipped_and_a_link_inside_the_folder_is_read(project):
    folder = project.path("practicedata")
    os.mkfifo(folder / "pipe.csv")  # opening it would block for ever
    (folder / "folder.csv").mkdir()
    (folder / "alias.csv").symlink_to("dataset1.csv")
    (folder / "dangling.csv").symlink_to("nowhere.csv")
    result = project.run("ingestion.py", timeout=60)
    assert result.returncode == 0, result.stderr
    detail = ingested_detail(project)
    assert sorted(detail["files"]) == ["alias.csv", "dataset1.csv", "dataset2.csv"] and detail["rejected"] == {}


@pytest.mark.parametrize(
    "bad_rows",
    [
        f"ok,1,2,3,0\n{SECRET},{SECRET},2,3,0\n",  # text in a feature
        f"ok,1,2,3,{SECRET}\n",  # text as the target
        f"ok,1,2,3,0\nx,1,2,3,0,{SECRET}\n",  # a field too many: Arrow quotes the whole row
        f'ok,1,2,3,0\n"{SECRET},1,2,3,0\n',  # an unterminated quote
        f"ok,1,2,3,0\n{SECRET}\xe9,1,2,3,0\n",  # not UTF-8 (written as Latin-1)
        f"ok,1,2,3,0\n{SECRET}," + "9" * 400 + "x,2,3,0\n",  # a long bad cell
    ],
)
def test_a_rejection_reason_never_quotes_the_file(deployed, bad_rows):
    deployed.path("practicedata", "bad.csv").write_bytes((HEADER + bad_rows).encode("latin-1"))
    result = deployed.run("fullprocess.py")
    assert_tick_went_on(result, deployed, new_file=None)
    reason = last_record(deployed)["rejected_files"]["bad.csv"]
    assert reason.startswith("line ") and len(reason) <= 200
    assert SECRET not in everything_written(deployed, result)

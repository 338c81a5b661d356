"""Months of ticks and worker restarts: the history is read from its end, its whole-history figures come
from its summary, the history and the log rotate, and the metrics folder stays bounded."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
import tracemalloc
from pathlib import Path

from conftest import Project, fresh_health, scaled, scrape
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from drs import diagnostics
from drs.cli import setup_logging
from drs.history import Decision, HistoryLog, TickRecord, status_rows
from drs.multiprocess_metrics import MergedCollector, merge_dead_worker
from drs.status_views import history_view, read_history

LINES = 500_000
BOOTSTRAP = {
    "start": "2025-01-01T00:00:00+00:00",
    "end": "2025-01-01T00:00:09+00:00",
    "decision_code": "drift_redeployed",
    "format_version": 1,
    "exit_status": 0,
    "deployed_version": "v0002",
    "stages": {"ingest": 1.25, "train": 2.5},
    "new_files": ["a.csv"],
    "drift": {"drift": True, "tests": {}, "trigger": {"tests": ["f1"], "fired": ["f1"]}},
}


def quiet_line(minute: int) -> bytes:
    start = f"2025-02-{1 + minute // 1440 % 28:02d}T{minute // 60 % 24:02d}:{minute % 60:02d}:00+00:00"
    line = {"start": start, "end": start, "decision_code": "no_new_data", "format_version": 1, "exit_status": 0}
    return (json.dumps(line) + "\n").encode()


def long_history(tmp_path) -> tuple[Project, HistoryLog]:
    """A project whose history holds a drift tick that timed ingestion and training, then LINES - 1 quiet
    ticks (about a year at a tick a minute), written as a history from before summaries existed."""
    project = Project(tmp_path)
    project.write_config()
    config = project.config()
    config.log_folder.mkdir(parents=True)
    path = config.log_folder / "history.jsonl"
    with open(path, "wb") as handle:
        handle.write((json.dumps(BOOTSTRAP) + "\n").encode())
        line = quiet_line(0)
        for _ in range((LINES - 1) // 1000):
            handle.write(line * 1000)
        handle.write(line * ((LINES - 1) % 1000))
    return project, HistoryLog.of(config)


def test_a_long_history_is_read_from_its_end_and_its_summary(tmp_path, monkeypatch):
    project, history = long_history(tmp_path)
    config = project.config()
    # The first append after an upgrade builds the summary (and rotates the file: it is over the limit).
    history.append(TickRecord(start="2026-01-01T00:00:00+00:00", decision=Decision.NO_NEW_DATA, exit_status=0))
    history.append(TickRecord(start="2026-01-01T00:10:00+00:00", decision=Decision.NO_NEW_DATA, exit_status=0))
    assert history.part(1).stat().st_size > 40 * 1024**2 and history.path.stat().st_size < 1000

    parsed = []
    loads = json.loads

    def counted(text, *args, **kwargs):
        parsed.append(1)
        return loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counted)
    tracemalloc.start()
    try:
        view = history_view(config)
        timings = diagnostics.execution_time(config)
        rows = status_rows(history.read(last=10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The figures that need the whole history are right: the one tick that timed both stages and ran
    # the drift tests is the first of 500,001 records.
    assert timings == {"ingestion_seconds": 1.25, "training_seconds": 2.5}
    assert view.records == LINES + 2
    assert view.drift_tick is not None and view.drift_tick.start == BOOTSTRAP["start"]
    assert [record.decision for record in view.recent][-1] is Decision.NO_NEW_DATA and len(view.recent) == 10
    assert len(rows) == 12 and rows[-1].startswith("2026-01-01T00:10:00")
    # ... and yet only the last lines were parsed, in a few MB (the history is 45 MB).
    assert len(parsed) < 100, len(parsed)
    assert peak < 5 * 1024**2, peak


def test_a_long_history_without_a_summary_is_read_once_and_never_whole_in_memory(tmp_path):
    project, history = long_history(tmp_path)
    tracemalloc.start()
    try:
        figures = history.figures()
        last = history.read(last=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert figures.records == LINES and figures.stage_timings == {"ingest": 1.25, "train": 2.5}
    assert len(last) == 3 and peak < 5 * 1024**2, peak


def test_a_torn_line_of_any_length_is_skipped_in_bounded_memory(tmp_path, monkeypatch, caplog):
    """A 40 MB unterminated line (a foreign or torn write) at the end of the history, then as the newest
    old part: readers skip it as torn, holding at most the longest line a writer makes."""
    from drs import history as history_module

    monkeypatch.setattr(history_module, "LONGEST_LINE", 1 << 20)
    history = HistoryLog(tmp_path / "logs" / "history.jsonl")
    for number in range(5):
        history.append(record(number, stages={"ingest": 0.5, "train": float(number)}))
    with open(history.path, "ab") as handle:
        handle.write(b'{"start": "torn", "stages": {"train": 1, "ingest": 1}, "x": "' + b"y" * (40 << 20))

    def read_all():
        tracemalloc.start()
        try:
            found = (history.read(last=3), history.read(), history.figures(), history.read(last=10))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return found, peak

    with caplog.at_level(logging.WARNING, logger="history"):
        (last, whole, figures, ten), peak = read_all()
    assert [r.start for r in last] == [record(n).start for n in (2, 3, 4)]
    assert [r.start for r in whole] == [r.start for r in ten] == [record(n).start for n in range(5)]
    assert figures.records == 5 and figures.stage_timings == {"ingest": 0.5, "train": 4.0}
    assert "skipped 1 torn or unreadable line(s)" in caplog.text
    assert peak < 4 << 20, peak  # the line is 40 MB; the reader's limit here 1 MB

    # The next append closes the torn line off and rotates the file: the old part reads the same way.
    history.max_bytes = 1
    history.append(record(5))
    assert history.part(1).stat().st_size > 40 << 20
    (last, whole, figures, ten), peak = read_all()
    assert [r.start for r in ten] == [record(n).start for n in range(6)]
    assert figures.records == 6 and peak < 4 << 20, peak


def record(number: int, **fields) -> TickRecord:
    return TickRecord(start=f"2026-01-01T00:00:{number:06d}", decision=Decision.NO_NEW_DATA, exit_status=0, **fields)


def test_rotation_keeps_the_old_parts_and_the_figures_stay_right(tmp_path):
    history = HistoryLog(tmp_path / "logs" / "history.jsonl", max_bytes=4096, backups=3)
    for number in range(400):
        fields: dict = {}
        if number == 20:
            fields = {"drift": {"drift": False, "tests": {}}, "stages": {"ingest": 0.5, "train": 0.75}}
        if number == 30:
            fields = {"stages": {"ingest": 1.5, "train": 1.75}}
        if number == 35:
            fields = {"stages": {"ingest": 9.0}}
        history.append(record(number, **fields))
    folder = history.path.parent
    assert sorted(path.name for path in folder.iterdir()) == [
        "history.jsonl",
        "history.jsonl.1",
        "history.jsonl.2",
        "history.jsonl.3",
        "historysummary.json",
    ]
    assert all(path.stat().st_size < 4096 + 200 for path in folder.glob("history.jsonl*"))
    figures = history.figures()
    assert figures.records == 400
    assert figures.stage_timings == {"ingest": 1.5, "train": 1.75}
    assert figures.drift_tick is not None and figures.drift_tick.start == record(20).start
    # The last records, across the parts, oldest first; the whole of what is kept likewise.
    assert [r.start for r in history.read(last=30)] == [record(n).start for n in range(370, 400)]
    kept = history.read()
    assert [r.start for r in kept] == [record(n).start for n in range(400 - len(kept), 400)]
    assert 30 < len(kept) < 400

    # A line appended by another hand (no summary update) is counted; a history rewritten is read again.
    from drs.storage import append_jsonl

    append_jsonl(history.path, {"start": "by hand", "drift": {"tests": {}}})
    by_hand = history.figures()
    assert by_hand.records == 401 and by_hand.drift_tick is not None and by_hand.drift_tick.start == "by hand"
    current = len(history.path.read_text().splitlines())
    history.path.write_text(json.dumps({"start": "rewritten"}) + "\n")
    again = history.figures()
    assert (
        again.drift_tick is not None and again.drift_tick.start == record(20).start
    )  # from the rotated parts, kept in the summary
    assert again.records == 401 - current + 1


def test_a_tick_rotates_the_history_and_the_log_as_configured(deployed):
    deployed.write_config(history_max_bytes=100, log_max_bytes=300, log_backups=3)
    for _ in range(3):
        result = deployed.run("fullprocess.py")
        assert result.returncode == 0, result.stderr
    logs = deployed.path("logs")
    names = sorted(path.name for path in logs.iterdir())
    # Each append rotates the (tiny) history: the newest three ticks one part each, the oldest part the
    # bootstrap and the first; the log likewise, its fourth part dropped.
    assert {"history.jsonl.1", "history.jsonl.2", "history.jsonl.3"} <= set(names)
    assert "history.jsonl.4" not in names
    assert {"fullprocess.log.1", "fullprocess.log.2", "fullprocess.log.3"} <= set(names)
    assert "fullprocess.log.4" not in names
    # --status reads across the parts, the bootstrap included (the three quiet ticks in one row).
    status = deployed.run("fullprocess.py", "--status", "5")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert len(lines) == 2 + 2 and "bootstrap" in lines[2] and "3 ticks with no new data since" in lines[3]
    assert history_view(deployed.config()).records == 4
    assert len(read_history(deployed.config(), last=None)) == 4


def test_the_log_handler_rotates_by_size(tmp_path):
    log_file = tmp_path / "logs" / "fullprocess.log"
    try:
        setup_logging(log_file, max_bytes=500, backups=2)
        for number in range(100):
            logging.getLogger("tick").info("line %d of a long run", number)
    finally:
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()
    names = sorted(path.name for path in log_file.parent.iterdir())
    assert names == ["fullprocess.log", "fullprocess.log.1", "fullprocess.log.2"]
    assert "line 99 of a long run" in log_file.read_text()
    assert all(path.stat().st_size <= 500 for path in log_file.parent.iterdir())


# --- the metrics folder --------------------------------------------------------------------

REQUESTS = ("drs_http_requests", "drs_http_requests_total", ["endpoint", "method", "status"])
DURATION = "drs_http_request_duration_seconds"


def write_worker(folder, pid: int, requests: int) -> None:
    """The files a worker leaves: `requests` answered /health requests, each timed under 5 ms."""
    counter = MmapedDict(str(folder / f"counter_{pid}.db"))
    counter.write_value(mmap_key(*REQUESTS, ["/health", "GET", "200"], "requests"), float(requests), 0.0)
    counter.close()
    histogram = MmapedDict(str(folder / f"histogram_{pid}.db"))
    histogram.write_value(
        mmap_key(DURATION, DURATION + "_bucket", ["endpoint", "le"], ["/health", "0.005"], "seconds"),
        float(requests),
        0.0,
    )
    histogram.write_value(
        mmap_key(DURATION, DURATION + "_sum", ["endpoint"], ["/health"], "seconds"), 0.001 * requests, 0.0
    )
    histogram.close()


def totals(collector) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): round(sample.value, 6)
        for metric in collector.collect()
        for sample in metric.samples
    }


def test_dead_workers_files_are_merged_and_the_totals_kept(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    write_worker(folder, 1, 7)  # a live worker: never merged
    for pid in range(1000, 1200):  # 200 restarts
        write_worker(folder, pid, pid % 13 + 1)
        expected = totals(MultiProcessCollector(None, path=str(folder)))
        assert merge_dead_worker(str(folder), pid) == 2
        assert totals(MergedCollector(None, path=str(folder))) == expected
    assert sorted(path.name for path in folder.glob("*.db")) == [
        "counter_1.db",
        "counter_archive.db",
        "histogram_1.db",
        "histogram_archive.db",
    ]
    answered = 7 + sum(pid % 13 + 1 for pid in range(1000, 1200))
    final = totals(MergedCollector(None, path=str(folder)))
    assert final["drs_http_requests_total", (("endpoint", "/health"), ("method", "GET"), ("status", "200"))] == answered
    assert final[DURATION + "_count", (("endpoint", "/health"),)] == answered
    assert merge_dead_worker(str(folder), 4242) == 0  # a worker that never counted anything


HEALTH = ("drs_http_requests_total", (("endpoint", "/health"), ("method", "GET"), ("status", "200")))


def metrics_folder(server) -> Path:
    """The folder drs/gunicorn_conf.py made for this server's workers, as its master logged it."""
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        match = re.search(r"metrics of every worker in (\S+)", server.log_path.read_text())
        if match:
            return Path(match.group(1))
        time.sleep(0.1)
    raise AssertionError(f"no metrics folder in {server.log_path.read_text()[-500:]}")


def test_make_serve_merges_each_killed_workers_files(make_serve):
    folder = metrics_folder(make_serve)
    answered = len(fresh_health(make_serve))
    for _ in range(2):
        pid = make_serve.get("/health").json()["pid"]
        answered += 1
        os.kill(pid, signal.SIGKILL)
        answers = fresh_health(make_serve)
        answered += len(answers)
        assert pid not in {body["pid"] for _, body in answers}
        deadline = time.monotonic() + scaled(30)
        while list(folder.glob(f"*_{pid}.db")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not list(folder.glob(f"*_{pid}.db")), "the dead worker's files are still there"
    counters = sorted(path.name for path in folder.glob("counter_*.db"))
    assert "counter_archive.db" in counters and len(counters) <= make_serve.workers + 1
    samples = scrape(make_serve.url)
    assert samples[HEALTH] >= answered  # every answered /health counted, the dead workers' included

"""The run history as a type: lines of every format version read back, views, the one writer."""

import json

from drs.history import Decision, HistoryLog, QuietRun, TickRecord, is_quiet, last_stage_timings, status_rows


def test_a_record_round_trips_with_its_decision_code_and_format_version(tmp_path):
    record = TickRecord(start="2026-12-01T10:00:00.000+00:00", decision=Decision.DRIFT_REDEPLOYED, exit_status=0)
    record.scores = {"deployed_f1": 0.675, "new_data_f1": 0.574, "retrained_test_f1": 0.619}
    history = HistoryLog(tmp_path / "logs" / "history.jsonl")
    history.append(record)
    line = json.loads(history.path.read_text())
    assert line["decision"] == "drift, redeployed" and line["decision_code"] == "drift_redeployed"
    assert line["format_version"] == 1
    assert history.read() == [record]


def test_a_failure_after_a_switch_is_worded_from_its_fields_and_read_back_from_them():
    record = TickRecord(start="t", decision=Decision.FAILED, deployed_version="v0003", deployed_by_tick=True)
    line = record.to_json()
    assert line["decision"] == "failed after deploying v0003"
    line["decision"] = "anything: format 1 readers never parse the words"
    again = TickRecord.from_json(line)
    assert again.decision is Decision.FAILED and again.deployed_by_tick and again.deployed_version == "v0003"


def test_format_0_lines_are_read_by_their_words():
    old = [
        {"start": "a", "decision": "no new data", "exit_status": 0, "deployed_version": "v0001"},
        {"start": "b", "decision": "failed after deploying v0002", "exit_status": 1, "deployed_version": "v0002"},
        {"start": "c", "decision": "rollback from v0002", "exit_status": 0, "deployed_version": "v0001"},
        {"start": "d", "decision": "rollback from damaged production", "deployed_version": "v0001"},
        {"start": "e", "decision": "skipped: another run in progress", "deployed_version": None},
        {"start": "f", "decision": "something a later version wrote"},
    ]
    records = [TickRecord.from_json(line) for line in old]
    assert [r.decision for r in records] == [
        Decision.NO_NEW_DATA,
        Decision.FAILED,
        Decision.ROLLBACK,
        Decision.ROLLBACK,
        Decision.SKIPPED,
        None,
    ]
    assert records[1].deployed_by_tick and records[2].rolled_back_from == "v0002"
    assert records[3].rolled_back_from is None and records[3].decision_words == "rollback from damaged production"


def test_odd_values_become_missing_and_unknown_keys_are_kept():
    record = TickRecord.from_json({"start": "x", "rows": 5, "seconds": "slow", "new_files": "a.csv", "later": [1]})
    assert record.rows is None and record.seconds is None and record.new_files == []
    assert record.to_json()["later"] == [1]


def test_timings_come_from_the_newest_record_that_ran_both_stages():
    records = [
        TickRecord(start="1", stages={"ingest": 1.0, "train": 2.0}),
        TickRecord(start="2", stages={"ingest": 3.0}),
    ]
    assert last_stage_timings(records) == {"ingest": 1.0, "train": 2.0}
    assert last_stage_timings(records[1:]) is None


def test_the_status_table_has_one_line_per_record_whatever_the_error_holds():
    record = TickRecord(
        start="2026-12-01T10:00:00.000+00:00",
        seconds=1.5,
        exit_status=1,
        decision=Decision.FAILED,
        failed_stage="ingest",
        error="first line\nsecond line",
        scores={"deployed_f1": 0.5, "new_data_f1": None},
    )
    header, rule, line = status_rows([record])
    assert header.startswith("start (UTC)") and set(rule) == {"-"}
    assert "0.500/n/a" in line and line.endswith("failed [ingest: first line second line]")


# --- runs of quiet ticks, one row each ---------------------------------------------------------------


def quiet(minute: int, **fields) -> TickRecord:
    return TickRecord(
        start=f"2026-12-04T{10 + minute // 60:02d}:{minute % 60:02d}:00+00:00",
        decision=Decision.NO_NEW_DATA,
        exit_status=0,
        deployed_version="v0002",
        **fields,
    )


def test_runs_of_quiet_ticks_are_one_row_and_the_last_deploy_stays_in_view(tmp_path):
    history = HistoryLog(tmp_path / "history.jsonl")
    deploy = TickRecord(start="2026-12-04T09:50:00+00:00", decision=Decision.DRIFT_REDEPLOYED, exit_status=0)
    history.append(deploy)
    for minute in range(0, 870, 10):  # 87 quiet ticks from 10:00
        history.append(quiet(minute))
    warned = quiet(870, warning="the reports are stale")
    history.append(warned)
    history.append(quiet(880))
    for minute in range(890, 920, 10):
        history.append(quiet(minute))
    rows = history.read_rows(10)
    assert [type(row).__name__ for row in rows] == ["TickRecord", "QuietRun", "TickRecord", "QuietRun"]
    assert rows[0] == deploy and rows[2] == warned  # a tick with something to say is its own row
    run = rows[1]
    assert isinstance(run, QuietRun) and run.count == 87 and run.complete
    assert run.words == "87 ticks with no new data since 2026-12-04 10:00"
    assert run.last.start == quiet(860).start
    assert isinstance(rows[3], QuietRun) and rows[3].count == 4 and rows[3].first.start == quiet(880).start
    # Only as many rows as asked for, the newest; a run cut by the scan limit says it is longer.
    assert history.read_rows(2) == rows[2:]
    cut = history.read_rows(10, scan=50)
    assert isinstance(cut[0], QuietRun) and not cut[0].complete and cut[0].words.startswith("45+ ticks")
    lines = status_rows(rows)
    assert len(lines) == 2 + 4 and lines[3].endswith("87 ticks with no new data since 2026-12-04 10:00")


def test_a_single_quiet_tick_stays_a_record_and_odd_lines_never_join_a_run(tmp_path):
    history = HistoryLog(tmp_path / "history.jsonl")
    history.append(quiet(0))
    history.append(TickRecord(start="x", decision=Decision.SKIPPED, exit_status=0))
    history.append(quiet(10))
    alerted = quiet(20, alerts=[{"event": "recovered", "outcome": "delivered"}])
    history.append(alerted)
    with open(history.path, "a") as handle:  # a line from before format versions, and a torn one
        handle.write(json.dumps({"start": "2026-12-04T10:30:00+00:00", "decision": "no new data", "exit_status": 0}))
        handle.write('\n{"start": "torn\n')
    history.append(quiet(40))
    rows = history.read_rows(10)
    assert [row.start if isinstance(row, TickRecord) else row.count for row in rows] == [
        quiet(0).start,
        "x",
        quiet(10).start,
        alerted.start,
        2,  # the format-0 quiet line (parsed) and the last quiet tick; the torn line skipped
    ]
    assert all(is_quiet(row.first) and is_quiet(row.last) for row in rows if isinstance(row, QuietRun))
    assert not is_quiet(alerted) and is_quiet(quiet(0, alerts=[]))

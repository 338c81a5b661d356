"""For people: the status page (GET /) and the files it links (the score history, the report, the
confusion matrix)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, Response, g, render_template, send_file

from drs.api.errors import ApiError
from drs.api.state import ApiState, api_state

# The status page's one figure: matplotlib (Agg) without pyplot; the PDF library is never imported here.
from drs.figures import score_history_png
from drs.files import CONFUSION_MATRIX_FILE, REPORT_FILE, REPORTS_RECORD_FILE
from drs.history import TickRecord
from drs.status_views import (
    display_time,
    drift_test_rows,
    drift_verdict_words,
    fit_warnings_words,
    history_paths,
    history_view,
    number,
    read_history,
    score_fall_warning,
    tick_rows,
)
from drs.storage import read_json

blueprint = Blueprint("status", __name__)

# The table of estimates looks this far back for ticks that recorded one: quiet ticks record none, and
# a 10-minute cron makes 144 of them a day. Read from the end of the history, so its cost is bounded.
ESTIMATE_SCAN = 1000
ESTIMATE_ROWS = 10


def estimate_rows(records: list[TickRecord], last: int = ESTIMATE_ROWS) -> list[dict]:
    """The last `last` ticks (newest first) that recorded an F1 estimated without labels, as display rows:
    start, new rows, estimated F1, the realized new-data F1 ("awaiting labels" without), the threshold,
    the verdict and which probabilities the estimate used."""
    rows = []
    for record in reversed(records):
        if not isinstance(record.scores.get("estimated_f1"), (int, float)):
            continue
        test = ((record.drift or {}).get("tests") or {}).get("estimated") or {}
        realized = record.scores.get("new_data_f1")
        rows.append(
            {
                "start": display_time(record.start),
                "rows": test.get("rows", "-"),
                "estimated": number(record.scores["estimated_f1"]),
                "realized": number(realized) if realized is not None else "awaiting labels",
                "threshold": number(test.get("threshold")),
                "verdict": test.get("verdict", "?"),
                "probabilities": test.get("probabilities", "-"),
            }
        )
        if len(rows) == last:
            break
    return rows


def predicted_rates(record: TickRecord | None) -> dict | None:
    """The predicted positive rate before and after that the drift test "prediction" of `record` recorded
    (training sample, new rows, as percentages), its p-value and verdict; None when it recorded no rates."""
    result = (((record.drift or {}).get("tests") or {}).get("prediction") or {}) if record is not None else {}
    before, after = result.get("positive_rate_reference"), result.get("positive_rate_new")
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
        return None
    pvalue = result.get("pvalue")
    return {
        "reference": f"{before:.1%}",
        "new": f"{after:.1%}",
        "pvalue": f"{pvalue:.2g}" if isinstance(pvalue, (int, float)) else "-",
        "verdict": result.get("verdict", "?"),
    }


def _modified(path: Path) -> str | None:
    """A file's modification time as "YYYY-MM-DD HH:MM:SS" (UTC), or None when it does not exist."""
    try:
        stamp = os.stat(path).st_mtime
    except OSError:
        return None
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _deployed_view(state: ApiState) -> tuple[dict | None, str | None]:
    """(the served model as the page shows it, or None; the problem production's check found, or None)."""
    try:
        model = state.models.get()
    except ApiError as exc:
        return None, exc.message
    deployed = {
        "version": model.version,
        "f1": f"{model.f1:.4f}" if model.f1 is not None else "-",
        "created": display_time(model.manifest.get("created")),
        "note": model.manifest.get("note", ""),
        "fit_warnings": fit_warnings_words(model.manifest.get("fit_warnings")),
    }
    return deployed, state.models.problem


def _deployments(state: ApiState) -> list[dict]:
    store = state.models.store
    return state.cache.get("deployments", [], store.deployment_log, token=store.deployment_log_token())


@blueprint.get("/")
def status_page():
    state = api_state()
    config = state.config
    deployed, problem = _deployed_view(state)
    history = state.cache.get("history", history_paths(config), lambda: history_view(config))
    deployments = _deployments(state)
    drift_tick = history.drift_tick
    estimates = state.cache.get(
        "estimates", history_paths(config), lambda: estimate_rows(read_history(config, last=ESTIMATE_SCAN))
    )
    return render_template(
        "status.html",
        now=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        deployed=deployed,
        problem=problem,
        ticks=tick_rows(history.rows or history.recent),
        drift_tick={"start": display_time(drift_tick.start)} if drift_tick else None,
        drift_words=drift_verdict_words(drift_tick),
        drift_rows=drift_test_rows(drift_tick),
        predicted=predicted_rates(drift_tick),
        estimates=estimates,
        estimate_scan=ESTIMATE_SCAN,
        score_history=any(record.get("f1") is not None for record in deployments),
        score_warning=score_fall_warning(deployments, config.promotion_margin),
        report_time=_modified(config.model_folder / REPORT_FILE),
        reports=_reports_view(config.model_folder, deployed["version"] if deployed else None),
        matrix_time=_modified(config.model_folder / CONFUSION_MATRIX_FILE),
        # Reached with ?token=: the page's own links carry it too, or the browser could not follow them.
        token_query="?" + urlencode({"token": config.api_token}) if g.get("token_from_query") else "",
    )


def _reports_view(folder: Path, serving: str | None) -> dict:
    """Which version the report and the confusion matrix describe, and why when it is not the one served
    (a rollback or a deployment whose rebuild failed, or one still being written)."""
    record = read_json(folder / REPORTS_RECORD_FILE)
    described = record.get("version") if isinstance(record.get("version"), str) else None
    failed = record.get("failed")
    failed = failed if isinstance(failed, dict) else {}
    stale = None
    if serving is not None and described != serving:
        why = (
            f"rebuilding them failed: {failed.get('error')}" if failed.get("version") == serving else "not rebuilt yet"
        )
        stale = (
            f"The reports describe {described or 'no recorded version'}, production serves {serving} ({why}); "
            "the next tick rebuilds them, or run reporting.py."
        )
    return {"version": described, "stale": stale}


@blueprint.get("/scorehistory.png")
def score_history_image():
    state = api_state()
    store = state.models.store
    png = state.cache.get(
        "scorehistory", [], lambda: score_history_png(_deployments(state)), token=store.deployment_log_token()
    )
    if png is None:
        raise ApiError(404, "no deployments recorded yet")
    return Response(png, mimetype="image/png", headers={"Cache-Control": "no-cache"})


def _generated_file(path: Path, mimetype: str):
    # Opened before answering: a file replaced meanwhile is served whole (old or new), one
    # removed meanwhile is a 404, never a 500.
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the response)
    except FileNotFoundError:
        raise ApiError(
            404, f"{path.name} not generated yet: it is written after each deployment (or run reporting.py)"
        ) from None
    return send_file(handle, mimetype=mimetype, download_name=path.name, max_age=0)


@blueprint.get("/" + REPORT_FILE)
def report_pdf():
    return _generated_file(api_state().config.model_folder / REPORT_FILE, "application/pdf")


@blueprint.get("/" + CONFUSION_MATRIX_FILE)
def confusion_matrix_png():
    return _generated_file(api_state().config.model_folder / CONFUSION_MATRIX_FILE, "image/png")

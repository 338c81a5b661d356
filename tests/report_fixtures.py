"""The report's shared test data: a hand-made ReportData and tiny figures."""

from __future__ import annotations

import io

import pandas as pd
from PIL import Image

from drs.config import COURSE_SCHEMA
from drs.deploy import DeployedModel
from drs.history import TickRecord
from drs.report.gather import Distributions, ModelScores, ReportData
from drs.report.pdf import ReportFigures


def tiny_png(width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def hand_made_data(**changes) -> ReportData:
    """A report's data for a drift tick that redeployed v0002, with every piece present."""
    frame = pd.DataFrame({name: [1.0, 2.0, None] for name in COURSE_SCHEMA.features} | {"exited": [0, 1, 1]})
    tick = TickRecord.from_json(
        {
            "start": "2024-05-01T10:00:00+00:00",
            "decision": "drift, redeployed",
            "deployed_version_before": "v0001",
            "deployed_version": "v0002",
            "new_files": ["dataset3.csv"],
            "rejected_files": {"odd <&> name.csv": "missing column(s): exited"},
            "stages": {"detect": 0.01, "ingest": 1.5, "drift": 0.2},
            "seconds": 3.25,
            "drift": {
                "drift": True,
                "trigger": {"tests": ["raw"], "fired": ["raw"]},
                "tests": {
                    "raw": {
                        "verdict": "drift",
                        "statistic": 0.5742,
                        "threshold": 0.6752,
                        "detail": "F1 on the new data",
                    },
                    "ks": {
                        "verdict": "drift",
                        "statistic": 0.45,
                        "pvalue": 1e-9,
                        "threshold": 0.01,
                        "features": {"lastmonth_activity": {"verdict": "drift", "statistic": 0.45, "pvalue": 1e-9}},
                    },
                },
            },
        }
    )
    manifest = {
        "version": "v0002",
        "created": "2024-05-01T10:00:05+00:00",
        "previous_version": "v0001",
        "note": "drift: raw",
        "training_files": {"dataset3.csv": {"rows": 400}},
        "scores": {"f1": 0.6195},
    }
    values = {
        "config_name": "config_production.json",
        "schema": COURSE_SCHEMA,
        "generated": "2024-05-01 10:00 UTC",
        "deployed": DeployedModel(model=None, manifest=manifest),
        "final_data": frame,
        "scores": ModelScores(f1=0.6195, precision=0.8861, recall=0.4762, roc_auc=None, rows=400, positives=147),
        "summary": {"lastmonth_activity": {"mean": 1.5, "median": 1.5, "std": 0.7071}},
        "missing": {"lastmonth_activity": 33.33},
        "history": [tick],
        "deployments": [{"time": "2024-05-01T10:00:05+00:00", "action": "deploy", "version": "v0002", "f1": 0.6195}],
        "drift_tick": tick,
        "distributions": Distributions(frame, "v0001", frame, "the 3 new rows the drift tests used"),
        "ingested_detail": {"files": {"dataset3.csv": {"rows": 400, "size": 12345, "sha256": "ab" * 32}}},
        "packages": [{"package": "pandas", "installed": "2.2.0", "latest": "unknown", "outdated": False}],
    }
    return ReportData(**{**values, **changes})


# Different sizes: reportlab stores an image it has seen once.
FIGURES = ReportFigures(
    confusion_matrix=tiny_png(40, 30),
    score_history=tiny_png(50, 20),
    distributions=[tiny_png(60, 40), tiny_png(60, 30)],
)

"""Prometheus metrics of the API: request counts and latency, predictions served, and gauges
read at scrape time from production and the run history (GET /metrics, see drs/api/operations.py)."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from drs.config import PipelineError
from drs.history import HistoryLog
from drs.multiprocess_metrics import MergedCollector

# Set by drs/gunicorn_conf.py (`make serve`) before any worker starts: the workers' shared metrics folder.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A single-record prediction takes about a millisecond, a 10,000-row file a few (the README's benchmark);
# the upper buckets catch a queue behind a busy worker or a slow disk.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Label values are bounded: a client choosing the path or the method must not create new series.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"


class ApiMetrics:
    """The request metrics and the registry GET /metrics exposes.

    Under `make serve` (PROMETHEUS_MULTIPROC_DIR set, see drs/gunicorn_conf.py) every worker adds
    its counts to its own files in that folder and a scrape, whichever worker answers, sums
    every worker's files (prometheus_client's multiprocess mode), a dead worker's merged into one
    archive by gunicorn's master (drs.multiprocess_metrics). Without it (``python
    app.py``, tests) the counts live in this process, in a registry of this app's own.
    `production`: a collector read at scrape time (see ProductionCollector).
    """

    def __init__(self, production):
        folder = os.environ.get(MULTIPROCESS_ENV)
        self.registry = CollectorRegistry()
        if folder:
            if not os.path.isdir(folder):
                raise PipelineError(f"{MULTIPROCESS_ENV}={folder} is not a folder")
            # Read while no dead worker's files are being merged (drs.multiprocess_metrics).
            MergedCollector(self.registry, path=folder)
            own = None  # multiprocess values are collected from the files, never from a registry
        else:
            own = self.registry
        self.requests = Counter(
            "drs_http_requests",
            "HTTP requests answered, by route (other: no route), method and status",
            ["endpoint", "method", "status"],
            registry=own,
        )
        self.duration = Histogram(
            "drs_http_request_duration_seconds",
            "Seconds from the request's start to its response, by route",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.predictions = Counter("drs_predictions", "Rows predicted by POST /prediction", registry=own)
        self.registry.register(production)
        # (endpoint, method, status) -> its counter and histogram: labels() costs as much as the counting.
        self._series: dict[tuple, tuple] = {}

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        series = self._series.get((endpoint, method, status))
        if series is None:
            series = self.requests.labels(endpoint, method, str(status)), self.duration.labels(endpoint)
            self._series[endpoint, method, status] = series
        series[0].inc()
        series[1].observe(seconds)


class ProductionCollector:
    """Gauges read from files when /metrics is scraped: the deployed model (through the worker's
    drs.api.model_cache.ModelCache, which checks production first) and the last tick of the run history.
    Every worker reads the same files, so whichever answers gives the same values: nothing to
    merge across workers, and no gauge to keep up to date between scrapes.

    A tick's line is appended to the history when it ends: "the last tick" is the last one
    finished. Staleness is an alert rule on drs_seconds_since_last_tick (absent: no tick yet).
    """

    def __init__(self, current_model, history_path: Path, cache):
        """`current_model()`: (the deployed model or None, the problem production's check found or None, why
        the model does not take the config's schema or None);
        `cache`: a drs.api.model_cache.FileKeyedCache, so the history is read again only when it changed."""
        self.current_model, self.history_path, self.cache = current_model, history_path, cache

    def describe(self):
        return []

    def collect(self):
        deployed, problem, mismatch = self.current_model()
        yield GaugeMetricFamily(
            "drs_model_loaded",
            "1 when a model is held, 0 when none is (/prediction answers 503)",
            value=int(deployed is not None),
        )
        check_failed = deployed is not None and problem is not None
        yield GaugeMetricFamily(
            "drs_model_check_failed",
            "1 when production changed but its files failed their check: the model held keeps serving",
            value=int(check_failed),
        )
        yield GaugeMetricFamily(
            "drs_model_schema_mismatch",
            "1 when the model held was trained for another schema than the API's config (/prediction answers 409)",
            value=int(mismatch is not None),
        )
        yield GaugeMetricFamily(
            "drs_model_degraded",
            "1 when /health says degraded (a failed check or a schema mismatch)",
            value=int(check_failed or mismatch is not None),
        )
        if deployed is not None:
            info = GaugeMetricFamily(
                "drs_deployed_model_info", "The deployed model's version (always 1)", labels=["version"]
            )
            info.add_metric([deployed.version], 1)
            yield info
            if isinstance(deployed.f1, (int, float)):
                yield GaugeMetricFamily(
                    "drs_deployed_model_f1", "The deployed model's F1 on the test data", value=deployed.f1
                )
        tick = self.cache.get("last_tick", [self.history_path], lambda: _last_tick(self.history_path))
        if tick is not None:
            ended, exit_status = tick
            yield GaugeMetricFamily(
                "drs_last_tick_timestamp_seconds",
                "When the last tick of the run history ended (Unix time)",
                value=ended,
            )
            yield GaugeMetricFamily(
                "drs_seconds_since_last_tick",
                "Seconds since the last tick of the run history ended",
                value=max(0.0, time.time() - ended),
            )
            if isinstance(exit_status, int):
                yield GaugeMetricFamily(
                    "drs_last_tick_exit_status", "The last tick's exit status (0: done)", value=exit_status
                )


def _last_tick(history_path: Path) -> tuple[float, int | None] | None:
    """(end as Unix time, exit status) of the history's last record; None without a readable one."""
    try:
        records = HistoryLog(history_path).read(last=1)
    except OSError:  # an unreadable history drops the tick gauges, never the whole scrape
        return None
    if not records:
        return None
    record = records[-1]
    try:
        ended = dt.datetime.fromisoformat(record.end or record.start).timestamp()
    except ValueError:
        return None
    return ended, record.exit_status

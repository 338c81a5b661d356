"""The map of the files: every file the pipeline reads or writes, the one module that writes it, and
who reads it. Each folder is a config key, resolved against the config file's folder
(``prod_deployment_path`` and ``output_folder_path`` are shared by the practice and the production
configs; so is the tick's lock, which is why it lives in production).

``input_folder_path``, read only
    ``*.csv``: the incoming data. Listed and fingerprinted by drs.storage (the cheap tick), read by drs.ingest.

``test_data_path``, read only
    ``testdata.csv`` (TEST_DATA_FILE): the held-out labelled rows. Read by drs.score (and the API's /scoring).

``output_folder_path``: the ingested data, written by drs.ingest only
    ``finaldata.csv`` (FINAL_DATA_FILE): every unique row of the input files. Read by drs.train (training.py),
        drs.diagnostics, drs.report, the API's /summarystats.
    ``referencedata.csv`` (REFERENCE_SAMPLE_FILE): a fixed random sample of it, the drift tests' reference.
        Copied into each version by drs.production.
    ``ingestedfiles.json`` (INGESTED_DETAIL_FILE): per file sha256, size, mtime and rows; the rejected files.
        Copied into each version; its sha256 ties a trained model to the data it was trained on (drs.train).
    ``ingestedfiles.txt`` (INGESTED_RECORD_FILE): the course's list of ingested files, written last.

``output_model_path``: the model being trained and the reports
    ``trainedmodel.pkl`` (MODEL_FILE), ``trainedmodel.json`` (MODEL_RECORD_FILE: its sha256, the data's
        sha256 and, once scored, its F1): written by drs.train only; read by drs.score and drs.deploy.
    ``calibrator.pkl`` (CALIBRATOR_FILE): the probability calibration learned beside the model (its
        sha256 and quality in trainedmodel.json; absent when the data were too few), used only to estimate
        F1 without labels: written by drs.train only; published by drs.deploy.
    ``latestscore.txt`` (SCORE_FILE): the trained model's test F1, written by drs.score; copied by drs.deploy.
    ``confusionmatrix.png``, ``report.pdf`` (CONFUSION_MATRIX_FILE, REPORT_FILE), ``reports.json``
        (REPORTS_RECORD_FILE: the version they describe, written last; a rebuild that failed): written by
        drs.report only; the API serves the first two, the tick reads the third to catch up after a
        rollback or a kill.
    ``diagnostics.json`` (DIAGNOSTICS_FILE): written by drs.diagnostics only (for diagnostics.py and for
        the report).
    ``apireturns.txt`` (API_RETURNS_FILE): the API's answers, written by drs.api_client (apicalls.py).

``prod_deployment_path``: production, written by drs.production only (see its docstring for the layout)
    ``versions/vNNNN/`` (VERSIONS_DIR): each version's files, written once: MODEL_FILE, SCORE_FILE,
        INGESTED_RECORD_FILE, INGESTED_DETAIL_FILE, REFERENCE_SAMPLE_FILE, ``trainingrows.npy``
        (TRAINING_ROWS_FILE: a key of each training row), CALIBRATOR_FILE when training made one, and
        ``manifest.json`` (MANIFEST_FILE). The calibrator is read by the drift test "estimated" only.
    ``current`` (CURRENT_LINK): the serving version, switched with one rename; the course's file names
        beside it are fixed links through it.
    ``deployments.jsonl`` (DEPLOYMENT_LOG): every deploy and rollback. Read by the API, the report and the
        drift tests' score history, through drs.production.
    ``checkedfiles.json`` (CHECKED_FILE): input files weighed against the serving version without a deploy,
        and the estimator and training parameters held back against it (not promoted, or rolled back from).
    ``.deploy.lock`` (DEPLOY_LOCK): one deployment or rollback at a time.
    ``fullprocess.lock`` (LOCK_FILE): held by a tick, and by a stage script run by hand, for its whole run.

``log_folder_path`` (default ``logs``)
    ``history.jsonl`` (HISTORY_FILE): one line per tick and rollback, written by drs.history.HistoryLog only.
        Read by --status, the status page, /metrics, drs.diagnostics (stage timings) and the report.
        Rotated by size (``history.jsonl.1`` the newest old part, up to ``log_backups`` kept).
    ``historysummary.json`` (HISTORY_SUMMARY_FILE): what needs the whole history (how many records, the
        last stage timings, the last drift tick), kept up to date by HistoryLog.append.
    ``fullprocess.log`` (LOG_FILE): the log, through the logging handler drs.cli sets up (rotated by size,
        ``fullprocess.log.1`` and so on).
    ``alertstate.json`` (ALERT_STATE_FILE): the alerts' cooldowns and failure streak, written by drs.alerts.

``metrics_textfile`` (optional): the tick's node_exporter textfile, written by drs.tick_metrics only.

The API workers' metrics folder (PROMETHEUS_MULTIPROC_DIR, made by drs/gunicorn_conf.py): prometheus_client's
    ``<kind>_<pid>.db`` files, one set per worker; ``<kind>_archive.db`` (METRICS_ARCHIVE_FILE): the workers
    gone, merged by drs.multiprocess_metrics, which also holds ``merge.lock`` (METRICS_LOCK_FILE).

Every file is written whole through drs.storage (a temp file in the same folder, then one rename), or
appended one whole line per write (the ``.jsonl`` files); the tick removes temp files a killed run left.
"""

FINAL_DATA_FILE = "finaldata.csv"
REFERENCE_SAMPLE_FILE = "referencedata.csv"
REFERENCE_SAMPLE_ROWS = 50_000
INGESTED_DETAIL_FILE = "ingestedfiles.json"
INGESTED_RECORD_FILE = "ingestedfiles.txt"
TEST_DATA_FILE = "testdata.csv"

MODEL_FILE = "trainedmodel.pkl"
MODEL_RECORD_FILE = "trainedmodel.json"
CALIBRATOR_FILE = "calibrator.pkl"
SCORE_FILE = "latestscore.txt"
CONFUSION_MATRIX_FILE = "confusionmatrix.png"
REPORT_FILE = "report.pdf"
REPORTS_RECORD_FILE = "reports.json"
DIAGNOSTICS_FILE = "diagnostics.json"
API_RETURNS_FILE = "apireturns.txt"

VERSIONS_DIR = "versions"
CURRENT_LINK = "current"
MANIFEST_FILE = "manifest.json"
TRAINING_ROWS_FILE = "trainingrows.npy"
DEPLOYMENT_LOG = "deployments.jsonl"
CHECKED_FILE = "checkedfiles.json"
DEPLOY_LOCK = ".deploy.lock"
LOCK_FILE = "fullprocess.lock"

HISTORY_FILE = "history.jsonl"
LOG_FILE = "fullprocess.log"
ALERT_STATE_FILE = "alertstate.json"
HISTORY_SUMMARY_FILE = "historysummary.json"

METRICS_ARCHIVE_FILE = "{kind}_archive.db"
METRICS_LOCK_FILE = "merge.lock"

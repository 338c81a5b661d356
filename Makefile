# Dynamic Risk Assessment System: set-up and everyday commands.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
WORKERS ?= 2
CONFIG ?= config_production.json
APP ?= app:create_app()
# Per-request access log lines cost ~40% of single-record throughput (measured):
# off by default; ACCESS_LOG=- writes them to stdout.
ACCESS_LOG ?=
# One gevent worker per core: a worker reads each connection's request without
# holding a thread, so clients that send slowly cannot starve the others (gthread
# 2x2 stopped answering with 5 slow-header clients; measured by bench/slow_clients.py).
# --no-control-socket: gunicorn's control socket defaults to one path per user, shared by every server.
# drs/gunicorn_conf.py: a private metrics folder per server start, so GET /metrics sums every worker's counts.
SERVE_FLAGS ?= --config $(CURDIR)/drs/gunicorn_conf.py --worker-class gevent --workers $(WORKERS) --no-control-socket

.PHONY: venv lint format run test test-slow serve print-serve-flags bench cron-install clean-outputs

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

venv: $(STAMP)

# The storyline on the bundled data: bootstrap on practicedata (once), then a
# production tick on sourcedata. Safe to run again: later runs find no new data.
run: venv
	@if [ -e production_deployment/current ]; then \
		echo "== a model is already deployed: skipping the practice bootstrap"; \
	else \
		echo "== practice phase: bootstrap on practicedata/"; \
		$(PY) fullprocess.py --config config.json; \
	fi
	@echo "== production phase: a tick on sourcedata/"
	$(PY) fullprocess.py --config config_production.json
	@echo
	$(PY) fullprocess.py --config config_production.json --status
	@echo
	@echo "Outputs:"
	@echo "  production model and records: production_deployment/ (manifest.json, trainedmodel.pkl, latestscore.txt)"
	@echo "  ingested data:                ingesteddata/finaldata.csv"
	@echo "  reports:                      practicemodels/ and models/ (confusionmatrix.png, report.pdf, diagnostics.json)"
	@echo "  run history and log:          logs/history.jsonl, logs/fullprocess.log"
	@echo "Next: make serve, then python apicalls.py --config config_production.json"

# ruff (lint and format) and mypy, configured in pyproject.toml; pre-commit runs ruff on commit
# (`.venv/bin/pre-commit install` once).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: venv
	$(PY) -m pytest -q -m "not slow" -n auto

test-slow: venv
	$(PY) -m pytest -q -m slow

serve: venv
	@$(PY) app.py --config $(abspath $(CONFIG)) --check > /dev/null
	DRS_CONFIG=$(abspath $(CONFIG)) $(VENV)/bin/gunicorn --chdir $(CURDIR) $(SERVE_FLAGS) \
		--bind $(HOST):$(PORT) $(if $(ACCESS_LOG),--access-logfile $(ACCESS_LOG)) '$(APP)'

print-serve-flags:
	@echo $(SERVE_FLAGS)

# BENCH_ARGS=--quick for a smaller run; results in bench/results/latest.json.
bench: venv
	$(PY) bench/run.py $(BENCH_ARGS)

# The project against MLflow's scoring server and Evidently, each in its own venv under
# bench/scratch/ (created on first use); BENCH_ARGS=--quick for a smaller run; bench/results/peers.json.
bench-peers: venv
	$(PY) bench/peers.py $(BENCH_ARGS)

cron-install: venv
	@command -v crontab >/dev/null || { echo "crontab not found: install cron first" >&2; exit 1; }
	mkdir -p logs
	sed 's#@PROJECT_DIR@#$(CURDIR)#g' crontab.txt | grep -v '^#' > $(VENV)/crontab.line
	( crontab -l 2>/dev/null | grep -vF '$(CURDIR)/fullprocess.py' ; cat $(VENV)/crontab.line ) | crontab -
	@echo "installed:"; cat $(VENV)/crontab.line

# Remove everything the pipeline generated (models, production, logs) - not the input data.
clean-outputs:
	rm -rf ingesteddata practicemodels models production_deployment logs

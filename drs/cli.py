"""Command-line plumbing shared by the stage scripts: --config, logging, the exit-code contract.

Exit codes: 0 done (including "nothing to do"), 1 an expected problem (one
line on stderr), 2 a bad config, 130 interrupted. Standard library only.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from pathlib import Path
from typing import cast

from drs.config import DEFAULT_CONFIG, OPTIONS, ConfigError, PipelineError, load_config
from drs.production import production_store
from drs.storage import LockBusy


def argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        help="path to the config JSON (default: config.json beside the scripts); "
        "relative paths inside it resolve against its folder",
    )
    return parser


class _StageFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(stage)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "stage"):
            record.stage = record.name
        return super().format(record)


def setup_logging(
    log_file: Path | None = None,
    level: int = logging.INFO,
    max_bytes: int | None = None,
    backups: int | None = None,
) -> None:
    """Configure the root logger once, from an entry point: stderr, and a file if given, rotated when it
    reaches `max_bytes` (``fullprocess.log.1`` the newest of `backups` old parts kept).

    A tick that skips while another runs writes to the same file: if one of them rotates it, the other's
    remaining lines go to the part it had open (``.1``), so nothing is lost."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = _StageFormatter()
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(formatter)
    root.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        # Without the config's (a config that does not load), the defaults of OPTIONS.
        max_bytes = max_bytes if max_bytes is not None else cast(int, OPTIONS["log_max_bytes"][0])
        backups = backups if backups is not None else cast(int, OPTIONS["log_backups"][0])
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    root.setLevel(level)
    # Library warnings (scikit-learn's, numpy's) go to the log, each once: raw on stderr they reach cron's
    # mail, and libraries that catch warnings themselves reset Python's own once-per-place memory.
    logging.captureWarnings(True)
    warnings_log = logging.getLogger("py.warnings")
    warnings_log.filters.clear()
    warnings_log.addFilter(_OncePerMessage())


class _OncePerMessage(logging.Filter):
    """Lets each distinct message through once per process."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def stage_main(stage: str, description: str, action, argv=None, add_arguments=None, lock: bool = False) -> int:
    """The common `main` of a stage script.

    Parses --config (plus whatever `add_arguments(parser)` adds), loads the
    config, sets up logging, runs `action(config, args)` and prints the line
    it returns, under the error contract of run_cli. With `lock` (a stage
    that writes shared state) the action runs holding the tick's lock, waiting
    up to `lock_wait_seconds` for a running tick to finish.
    """

    def body(argv):
        parser = argument_parser(description)
        if add_arguments is not None:
            add_arguments(parser)
        args = parser.parse_args(argv)
        config = load_config(args.config)
        setup_logging()
        if lock:
            try:
                with production_store(config).tick_lock(config.lock_wait_seconds):
                    message = action(config, args)
            except LockBusy as busy:
                raise PipelineError(
                    f"a tick is in progress {busy.holder}; waited {config.lock_wait_seconds:g} s "
                    f"(lock_wait_seconds): try again later"
                ) from None
        else:
            message = action(config, args)
        if message:
            print(message)
        return 0

    return run_cli(stage, body, argv)


def run_cli(stage: str, body, argv=None) -> int:
    """Run a stage's body(config, args) with the shared error contract.

    ConfigError -> exit 2, PipelineError -> exit 1, each as one line on stderr.
    """
    try:
        return body(argv) or 0
    except ConfigError as exc:
        print(f"{stage}: config error: {exc}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        print(f"{stage}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{stage}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a read-only or full disk, a folder that is a file: say where, no traceback
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in str(exc) else ""
        print(f"{stage}: error: {exc}{where}", file=sys.stderr)
        return 1

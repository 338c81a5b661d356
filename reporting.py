"""Reporting stage: the confusion matrix and the PDF report of the deployed model
(logic in the drs.report package).

    python reporting.py --config config.json
"""

from __future__ import annotations

import sys

from drs.cli import stage_main
from drs.config import Config
from drs.report import score_model, write_reports

__all__ = ["score_model", "write_reports", "main"]


def main(argv=None) -> int:
    def run(config: Config, args) -> None:
        write_reports(config)  # each file is named in the log as it is written

    return stage_main(
        "reporting", "Write the confusion matrix and the PDF report of the deployed model.", run, argv, lock=True
    )


if __name__ == "__main__":
    sys.exit(main())

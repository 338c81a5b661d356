"""Diagnostics stage: predictions, summary statistics, missing data, stage timings and outdated
packages of the deployed model and the ingested data (logic in drs/diagnostics.py).

    python diagnostics.py --config config.json
"""

from __future__ import annotations

import json
import sys

from drs.cli import stage_main
from drs.config import Config
from drs.diagnostics import (
    dataframe_summary,
    diagnostics_report,
    execution_time,
    missing_data,
    model_predictions,
    outdated_packages_list,
    write_diagnostics,
)
from drs.ingest import read_final_data
from drs.production import production_store
from drs.score import load_test_data

__all__ = ["model_predictions", "dataframe_summary", "missing_data", "execution_time", "outdated_packages_list"]


def main(argv=None) -> int:
    def run(config: Config, args) -> str:
        report = diagnostics_report(
            config, production_store(config).load_model(), read_final_data(config), load_test_data(config)
        )
        write_diagnostics(config, report)
        return json.dumps(report, indent=2)

    return stage_main(
        "diagnostics", "Print diagnostics of the deployed model and the ingested data.", run, argv, lock=True
    )


if __name__ == "__main__":
    sys.exit(main())

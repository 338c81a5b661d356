"""Ingestion stage: merge every CSV of the input folder into finaldata.csv (logic in drs/ingest.py).

python ingestion.py --config config.json
"""

from __future__ import annotations

import sys

from drs.cli import stage_main
from drs.config import Config
from drs.files import FINAL_DATA_FILE
from drs.ingest import merge_multiple_dataframe

__all__ = ["merge_multiple_dataframe", "main"]


def main(argv=None) -> int:
    def run(config: Config, args) -> str:
        result = merge_multiple_dataframe(config)
        return (
            f"wrote {config.output_folder / FINAL_DATA_FILE} ({result.rows} rows from {len(result.ingested)} file(s))"
        )

    return stage_main("ingestion", "Merge every CSV of the input folder into finaldata.csv.", run, argv, lock=True)


if __name__ == "__main__":
    sys.exit(main())

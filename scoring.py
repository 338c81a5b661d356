"""Scoring stage: the trained model's F1 on the test data (logic in drs/score.py).

python scoring.py --config config.json
"""

from __future__ import annotations

import sys

from drs.cli import stage_main
from drs.config import Config
from drs.files import SCORE_FILE
from drs.score import score_model

__all__ = ["score_model", "main"]


def main(argv=None) -> int:
    def run(config: Config, args) -> str:
        score = score_model(config)
        return f"F1 = {score:.4f} (wrote {config.model_folder / SCORE_FILE})"

    return stage_main("scoring", "Score the trained model on the test data (F1).", run, argv, lock=True)


if __name__ == "__main__":
    sys.exit(main())

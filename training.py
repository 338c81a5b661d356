"""Training stage: fit the model on the ingested data (logic in drs/train.py).

python training.py --config config.json
"""

from __future__ import annotations

import sys

from drs.cli import stage_main
from drs.config import Config
from drs.files import MODEL_FILE
from drs.train import train_model

__all__ = ["train_model", "main"]


def main(argv=None) -> int:
    def run(config: Config, args) -> str:
        train_model(config)
        return f"wrote {config.model_folder / MODEL_FILE}"

    return stage_main("training", "Train the model on the ingested data.", run, argv, lock=True)


if __name__ == "__main__":
    sys.exit(main())

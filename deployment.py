"""Deployment stage: promote the trained model to a new production version, or roll back and rewrite
the reports for the version rolled back to (logic in drs/deploy.py).

    python deployment.py --config config.json
    python deployment.py --config config_production.json --rollback [VERSION]
"""

from __future__ import annotations

import sys

from drs.cli import stage_main
from drs.config import Config
from drs.deploy import reports_after_rollback, rollback, store_model_into_pickle

__all__ = ["store_model_into_pickle", "rollback", "main"]


def main(argv=None) -> int:
    def add_arguments(parser) -> None:
        parser.add_argument(
            "--rollback",
            nargs="?",
            const="",
            metavar="VERSION",
            help="switch production back to VERSION (default: the version before the current one)",
        )

    def run(config: Config, args) -> str:
        if args.rollback is not None:
            version = rollback(config, args.rollback or None)
            stale = reports_after_rollback(config, version)
            return f"production now serves {version}" + (f"; {stale}" if stale else "")
        return f"deployed {store_model_into_pickle(config)} to {config.prod_folder}"

    return stage_main(
        "deployment", "Promote the trained model to production, or roll back.", run, argv, add_arguments, lock=True
    )


if __name__ == "__main__":
    sys.exit(main())

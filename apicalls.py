"""API calls: call every endpoint of the running API and save the answers to apireturns.txt
(logic in drs/api_client.py).

    python apicalls.py --config config_production.json [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import sys

from drs.api_client import call_api, save_api_returns
from drs.cli import stage_main
from drs.config import Config

__all__ = ["call_api", "save_api_returns", "main"]


def main(argv=None) -> int:
    def add_arguments(parser) -> None:
        parser.add_argument("--url", help="base URL of the API (default: api_url in the config, http://127.0.0.1:8000)")

    def run(config: Config, args) -> str:
        return f"wrote {save_api_returns(config, call_api(config, args.url))}"

    return stage_main(
        "apicalls",
        "Call every API endpoint and save the responses to apireturns.txt.",
        run,
        argv,
        add_arguments,
        lock=True,
    )


if __name__ == "__main__":
    sys.exit(main())

"""The Flask API (logic in the package drs/api/).

    python app.py --config config_production.json [--host H] [--port P]   # Flask's own server
    make serve                                                             # gunicorn, for real use
    gunicorn app:app                                                       # DRS_CONFIG names the config

``app`` is created on first access, from $DRS_CONFIG (else config.json): importing this
module does no work.
"""

from __future__ import annotations

import logging
import sys

from drs.api import create_app
from drs.api.security import RedactQueryToken
from drs.cli import argument_parser, run_cli, setup_logging
from drs.train import check_training_parameters

__all__ = ["create_app", "main"]  # and `app`, built on first access


def __getattr__(name: str):
    # PEP 562: `gunicorn app:app`, `flask run` and test clients ask for `app`; it is built once, then cached.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv=None) -> int:
    def body(argv):
        parser = argument_parser("Serve the risk-assessment API (development server; use `make serve` for gunicorn).")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--check", action="store_true", help="load the config and the app, then exit")
        args = parser.parse_args(argv)
        setup_logging()
        logging.getLogger("werkzeug").addFilter(RedactQueryToken())
        served = create_app(args.config)
        if args.check:  # `make serve` asks first: a bad config is one line, not a gunicorn boot failure
            check_training_parameters(served.config["DRS"])  # a misspelt estimator parameter, before cron finds it
            return 0
        served.run(host=args.host, port=args.port, debug=False, use_reloader=False, threaded=True)
        return 0

    return run_cli("app", body, argv)


if __name__ == "__main__":
    sys.exit(main())

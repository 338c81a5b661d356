"""The cron entry point: one tick of the pipeline (logic in drs/tick.py).

    python fullprocess.py --config config_production.json              # one tick
    python fullprocess.py --config config_production.json --status [N] # the last N ticks
    python fullprocess.py --config config_production.json --test-alert # is the webhook reached?

The tick that finds no new data imports only the standard library: it is what cron runs
every 10 minutes.
"""

from __future__ import annotations

import sys

from drs.cli import argument_parser
from drs.config import ConfigError, load_config
from drs.tick import notify_config_error, print_status, run, send_test


def number_of_ticks(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def main(argv=None) -> int:
    parser = argument_parser("Run one tick of the pipeline (cron entry point).")
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--status",
        nargs="?",
        const=10,
        type=number_of_ticks,
        metavar="N",
        help="print the last N ticks (default 10) and exit",
    )
    action.add_argument(
        "--test-alert",
        action="store_true",
        help="send a test alert to the configured webhook and say whether it was delivered",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"fullprocess: config error: {exc}", file=sys.stderr)
        if args.status is None and not args.test_alert:
            notify_config_error(args.config, exc)
        return 2
    if args.test_alert:
        return send_test(config)
    if args.status is not None:
        try:
            print_status(config, args.status)
        except OSError as exc:
            print(f"fullprocess: error: cannot read the run history: {exc}", file=sys.stderr)
            return 1
        return 0
    return run(config)


if __name__ == "__main__":
    sys.exit(main())

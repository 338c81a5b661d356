"""Course-style cron tick, the baseline of the no-op tick benchmark (not used by the pipeline).

The classic fullprocess.py imports every stage, and so pandas, scikit-learn
and matplotlib, before it looks whether anything is new.

    python bench/course_tick.py CONFIG
"""

import json
import os
import sys

import matplotlib.pyplot  # noqa: F401  (imported first, as the course's reporting module is)
import pandas  # noqa: F401
import sklearn.linear_model  # noqa: F401
import sklearn.metrics  # noqa: F401


def main(config_path: str) -> int:
    with open(config_path) as handle:
        config = json.load(handle)
    base = os.path.dirname(os.path.abspath(config_path))
    input_folder = os.path.join(base, config["input_folder_path"])
    record = os.path.join(base, config["prod_deployment_path"], "ingestedfiles.txt")
    with open(record) as handle:
        ingested = {line.strip() for line in handle if line.strip()}
    new = [name for name in os.listdir(input_folder) if name.endswith(".csv") and name not in ingested]
    if not new:
        print("no new data")
        return 0
    print("new data:", ", ".join(new))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

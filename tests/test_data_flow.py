"""A redeploying tick reads each input once and hands it on: counted, not assumed."""

import json
import subprocess

from conftest import PYTHON, ROOT

# Wraps the functions that read an input or do expensive work, runs one tick in this process,
# and prints how often each was called.
COUNTING_TICK = r"""
import collections, json, sys
sys.path.insert(0, sys.argv[1])
from drs import diagnostics, ingest as ingestion, score as scoring, train as training
from drs.production import LocalProductionStore
calls = collections.Counter()
def counted(module, name):
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        calls[name] += 1
        return original(*args, **kwargs)
    setattr(module, name, wrapper)
for module, name in [(ingestion, "merge_multiple_dataframe"), (ingestion, "read_final_data"),
                     (scoring, "load_test_data"), (LocalProductionStore, "load_model"),
                     (training, "fit_model"), (diagnostics, "outdated_packages_list")]:
    counted(module, name)
import fullprocess
status = fullprocess.main(["--config", sys.argv[2]])
print(json.dumps({"status": status, **calls}))
"""


def test_a_redeploying_tick_reads_each_input_once(deployed):
    result = subprocess.run(
        [PYTHON, "-c", COUNTING_TICK, str(ROOT), str(deployed.path("config_production.json"))],
        capture_output=True,
        text=True,
        cwd=deployed.elsewhere,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    calls = json.loads(result.stdout.strip().splitlines()[-1])
    record = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert record["decision"] == "drift, redeployed" and calls["status"] == 0
    assert calls["merge_multiple_dataframe"] == 1  # the ingested data is handed on, never re-read
    assert calls.get("read_final_data", 0) == 1  # the reference sample of the deployed version only
    assert calls["load_test_data"] == 1
    assert calls["load_model"] == 1  # by the drift tests; the reports get the new model from memory
    assert calls["fit_model"] == 1  # trained once: diagnostics take the timing from the tick
    assert calls["outdated_packages_list"] == 1

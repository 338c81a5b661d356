"""Course-style prediction API, the baseline of the serving benchmark (not used by the pipeline).

What the classic course app does on every request: read the config, unpickle
the model, read the named CSV with pandas, predict. ``records`` in the JSON
body are accepted too, so both apps answer the same requests.

    DRS_CONFIG=config.json gunicorn --chdir bench course_app:app
"""

import json
import os
import pickle

import pandas as pd
from flask import Flask, jsonify, request

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]

app = Flask(__name__)


@app.route("/prediction", methods=["POST"])
def prediction():
    config_path = os.environ["DRS_CONFIG"]
    with open(config_path) as handle:
        config = json.load(handle)
    base = os.path.dirname(os.path.abspath(config_path))
    with open(os.path.join(base, config["prod_deployment_path"], "trainedmodel.pkl"), "rb") as handle:
        model = pickle.load(handle)
    payload = request.get_json()
    if "filepath" in payload:
        data = pd.read_csv(os.path.join(base, payload["filepath"]))
    else:
        data = pd.DataFrame(payload["records"])
    predictions = model.predict(data[FEATURES].to_numpy(dtype=float))
    return jsonify(predictions=[int(p) for p in predictions])


@app.route("/health")
def health():
    return jsonify(status="ok")

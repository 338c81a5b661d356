"""Save the project's deployed scikit-learn pipeline as an MLflow model (runs in the MLflow venv).

    python mlflow_save.py TRAINEDMODEL_PKL MODEL_DIR COLUMN [COLUMN ...]

Unpickles trainedmodel.pkl (same scikit-learn, numpy and pandas as the
project) and writes it with `mlflow.sklearn.save_model` to MODEL_DIR
(replaced), in the "pickle" format (the same object, no conversion) and with
a signature of float columns named COLUMN..., as MLflow recommends for
serving. Prints the MLflow version.
"""

from __future__ import annotations

import pickle
import shutil
import sys

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    model_path, model_dir, feature_columns = argv[0], argv[1], argv[2:]
    with open(model_path, "rb") as handle:
        pipeline = pickle.load(handle)
    example = pd.DataFrame([[12.0, 900.0, 40.0], [300.0, 4000.0, 10.0]], columns=feature_columns)
    # The pipeline was fitted on a plain array: predict on one to build the signature.
    signature = infer_signature(example, pipeline.predict(example.to_numpy()))
    shutil.rmtree(model_dir, ignore_errors=True)
    mlflow.sklearn.save_model(pipeline, model_dir, serialization_format="pickle", signature=signature)
    print(f"mlflow {mlflow.__version__}: saved {model_path} to {model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

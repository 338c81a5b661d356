"""Reporting: confusion matrix of the deployed model on the test data.

Writes ``output_model_path/confusionmatrix.png``.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display under cron or in a server

import matplotlib.pyplot as plt  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from settings import CONFUSION_MATRIX_FILE, TARGET_COLUMN, Config, argument_parser, load_config, run_cli, setup_logging  # noqa: E402
from storage import atomic_path  # noqa: E402

log = logging.getLogger("reporting")


def save_confusion_matrix(config: Config, deployed=None) -> Path:
    """Plot the deployed model's confusion matrix on testdata.csv; returns the PNG path."""
    from deployment import load_deployed_model
    from scoring import load_test_data
    from training import labelled_rows

    deployed = deployed or load_deployed_model(config.prod_folder)
    test_data = load_test_data(config)
    features, labels = labelled_rows(test_data)
    predictions = deployed.model.predict(features)

    figure, axes = plt.subplots(figsize=(5.5, 4.8), dpi=120)
    ConfusionMatrixDisplay.from_predictions(
        labels, predictions, labels=[0, 1], display_labels=["stayed (0)", "exited (1)"],
        cmap="Blues", colorbar=False, ax=axes,
    )
    f1 = deployed.f1
    axes.set_title(f"Confusion matrix, model {deployed.version}\n"
                   f"test data: {len(labels)} rows" + (f", F1 {f1:.3f}" if f1 is not None else ""))
    axes.set_xlabel(f"predicted {TARGET_COLUMN}")
    axes.set_ylabel(f"actual {TARGET_COLUMN}")
    figure.tight_layout()
    target = config.model_folder / CONFUSION_MATRIX_FILE
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    log.info("wrote %s", target)
    return target


def score_model(config: Config | None = None) -> Path:
    """The course's name for this stage: write the confusion matrix of the deployed model."""
    return save_confusion_matrix(config or load_config())


def main(argv=None) -> int:
    def body(argv):
        args = argument_parser("Plot the deployed model's confusion matrix on the test data.").parse_args(argv)
        config = load_config(args.config)
        setup_logging()
        path = score_model(config)
        print(f"wrote {path}")
        return 0

    return run_cli("reporting", body, argv)


if __name__ == "__main__":
    sys.exit(main())

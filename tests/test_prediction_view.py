"""Prediction drift made visible: the histogram of the deployed model's probabilities before and after,
the predicted positive rate in the report and on the status page."""

from __future__ import annotations

import html
import io
import json
import re

import numpy as np
from conftest import OFFLINE_INDEX, client_for, images_on, read_pdf
from PIL import Image
from pypdf import PdfReader

from drs.api.status import predicted_rates
from drs.figures import PredictedProbabilities, prediction_histogram_png
from drs.history import TickRecord
from drs.ingest import read_final_data
from drs.production import production_store
from drs.report import draw_figures
from drs.report.gather import gather_report_data
from drs.report.pdf import pdf_bytes, predicted_rate_words
from drs.status_views import read_history

RATE_SENTENCE = re.compile(
    r"Predicted positive rate: (\d+\.\d)% on the training sample, (\d+\.\d)% on the new rows "
    r"\(prediction test p = ([0-9.e+-]+)\)\."
)


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG")
    return Image.open(io.BytesIO(png)).size


def drift_tick(prediction: dict) -> TickRecord:
    return TickRecord.from_json(
        {
            "start": "2024-05-01T10:00:00+00:00",
            "decision": "drift, redeployed",
            "deployed_version_before": "v0001",
            "drift": {"drift": True, "tests": {"prediction": prediction}},
        }
    )


# --- the figure and the words, in process ---------------------------------------------


def test_the_histogram_is_a_png_of_the_figure_size_for_both_sides_or_one():
    rng = np.random.default_rng(0)
    both = PredictedProbabilities(rng.uniform(0, 0.6, 200), rng.uniform(0.3, 1, 150), "v0001")
    assert png_size(prediction_histogram_png(both)) == (780, 432)

    one_side = PredictedProbabilities(np.array([0.2, 0.7, np.nan]), None, "v0001")
    assert png_size(prediction_histogram_png(one_side)) == (780, 432)


def test_the_histogram_is_none_without_any_probability():
    assert prediction_histogram_png(PredictedProbabilities(None, None, "v0001")) is None
    assert prediction_histogram_png(PredictedProbabilities(np.array([]), np.array([np.nan]), "v0001")) is None


def test_the_rates_read_as_percentages_in_the_report_and_on_the_status_page():
    record = drift_tick(
        {"verdict": "drift", "pvalue": 2.1e-24, "positive_rate_reference": 0.3225, "positive_rate_new": 0.54125}
    )
    assert predicted_rate_words(record) == (
        "Predicted positive rate: 32.2% on the training sample, 54.1% on the new rows (prediction test p = 2.1e-24)."
    )
    assert predicted_rates(record) == {"reference": "32.2%", "new": "54.1%", "pvalue": "2.1e-24", "verdict": "drift"}

    insufficient = drift_tick({"verdict": "insufficient data", "pvalue": None, "detail": "needs 30 rows"})
    assert predicted_rate_words(insufficient) is None and predicted_rates(insufficient) is None
    assert predicted_rates(None) is None


# --- a real production tick on the bundled data ------------------------------------------


def test_a_production_tick_shows_the_predicted_rates_in_its_report_and_on_the_status_page(deployed):
    result = deployed.run("fullprocess.py", config="config_production.json", env=OFFLINE_INDEX)
    assert result.returncode == 0, result.stderr
    line = json.loads(deployed.path("logs", "history.jsonl").read_text().splitlines()[-1])
    assert line["decision"] == "drift, redeployed"
    prediction = line["drift"]["tests"]["prediction"]
    before, after = prediction["positive_rate_reference"], prediction["positive_rate_new"]
    expected = (f"{before:.1%}", f"{after:.1%}", f"{prediction['pvalue']:.2g}")

    reader, text = read_pdf(deployed.path("models", "report.pdf"))
    found = RATE_SENTENCE.search(text)
    assert found and (f"{found[1]}%", f"{found[2]}%", found[3]) == expected
    assert before < after  # the bundled new data makes the model predict more churners
    assert "drawn by the tick" not in text
    tick_images = [images_on(page) for page in reader.pages]
    sentence_page = next(i for i, page in enumerate(reader.pages) if "Predicted positive rate:" in page.extract_text())

    # Rebuilt later without the frames: the recorded rates, no histogram.
    rebuilt = deployed.run("reporting.py", config="config_production.json", env=OFFLINE_INDEX)
    assert rebuilt.returncode == 0, rebuilt.stderr
    reader, text = read_pdf(deployed.path("models", "report.pdf"))
    found = RATE_SENTENCE.search(text)
    assert found and (f"{found[1]}%", f"{found[2]}%", found[3]) == expected
    assert "The histogram of the probabilities is drawn by the tick that ran the test" in text
    rebuilt_images = [images_on(page) for page in reader.pages]
    assert sum(tick_images) == sum(rebuilt_images) + 1
    assert tick_images[sentence_page] >= 1

    page = client_for(deployed, "config_production.json").get("/").text
    shown = re.search(r'<p id="predicted-rate">(.*?)</p>', page, re.S)
    assert shown is not None
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", "", shown[1])).split())
    assert words == (
        f"Predicted positive rate: {expected[0]} on the training sample \u2192 {expected[1]} on the new rows "
        f"(prediction test p = {expected[2]}, {prediction['verdict']})"
    )


def test_after_a_redeploy_the_histogram_draws_the_model_the_prediction_test_ran(deployed):
    result = deployed.run("fullprocess.py", config="config_production.json", env=OFFLINE_INDEX)
    assert result.returncode == 0, result.stderr
    config = deployed.config("config_production.json")
    store = production_store(config)
    assert store.current_version() == "v0002"
    prediction = read_history(config, last=1)[-1].drift["tests"]["prediction"]
    reference = read_final_data(config, io.BytesIO(store.reference_sample("v0001")))
    inputs = {"version": "v0001", "reference": reference, "new": reference.head(50)}

    data = gather_report_data(config, drift_inputs=inputs, packages=[])

    assert data.predictions is not None and data.predictions_problem is None
    assert data.predictions.version == "v0001" and len(data.predictions.new) == 50
    # The rate the drift test recorded on the same reference sample with the same model.
    assert round(float(np.mean(data.predictions.reference > 0.5)), 6) == prediction["positive_rate_reference"]

    deployed.path("production_deployment", "versions", "v0001", "trainedmodel.pkl").unlink()
    gone = gather_report_data(config, drift_inputs=inputs, packages=[])
    assert gone.predictions is None
    assert gone.predictions_problem.startswith("Probabilities of v0001: ")
    assert gone.predictions_problem.endswith("trainedmodel.pkl is no longer kept")
    reader = PdfReader(io.BytesIO(pdf_bytes(gone, draw_figures(gone))))
    text = " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())
    assert RATE_SENTENCE.search(text) and "is no longer kept" in text

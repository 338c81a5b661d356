"""The bundled data: reproducible from the generator, valid, learnable, and shifted where it should be."""
import numpy as np
import pandas as pd

from conftest import ROOT
from drift import ks_test
from generate_data import generate, write_bundled_data
from ingestion import read_validated_csv

BUNDLED = ["practicedata/dataset1.csv", "practicedata/dataset2.csv", "sourcedata/dataset3.csv",
           "sourcedata/dataset4.csv", "testdata/testdata.csv"]


def test_generator_reproduces_the_bundled_files_byte_for_byte(tmp_path):
    written = write_bundled_data(tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in written) == sorted(BUNDLED)
    for relative in BUNDLED:
        assert (tmp_path / relative).read_bytes() == (ROOT / relative).read_bytes(), relative


def test_bundled_files_pass_validation_and_the_test_set_is_large_enough():
    for relative in BUNDLED:
        read_validated_csv(ROOT / relative)
    test = pd.read_csv(ROOT / "testdata" / "testdata.csv")
    assert len(test) >= 200 and 0.2 < test["exited"].mean() < 0.6


def test_source_data_is_shifted_against_practice_data():
    practice = pd.concat([pd.read_csv(ROOT / p) for p in BUNDLED[:2]])
    source = pd.concat([pd.read_csv(ROOT / p) for p in BUNDLED[2:4]])
    assert ks_test(practice, source, 0.01, 30)["verdict"] == "drift"
    assert source["lastmonth_activity"].median() < practice["lastmonth_activity"].median()
    assert source["number_of_employees"].median() > practice["number_of_employees"].median()


def test_generator_is_deterministic_and_seed_dependent():
    assert generate(50, "source", seed=3).equals(generate(50, "source", seed=3))
    assert not generate(50, "source", seed=3).equals(generate(50, "source", seed=4))
    assert np.isclose(generate(20000, "practice", seed=1)["exited"].mean(), 0.34, atol=0.05)

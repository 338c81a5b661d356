"""The bundled data: reproducible from the generator, valid, learnable, and shifted where it should be.

Everything here is generated into a temp folder: the checkout's own data folders are where a user
drops files, and no test reads them.
"""

import hashlib

import numpy as np
import pandas as pd
import pytest

from drs.drift import ks_test
from drs.ingest import read_validated_csv
from generate_data import generate, write_bundled_data

# The sha256 of the bundled CSVs as committed: the generator must keep reproducing them byte for byte.
BUNDLED = {
    "practicedata/dataset1.csv": "e4168a3bdccae79623a3af0e39adae01086582ab28af492f1ba12bb34434e01a",
    "practicedata/dataset2.csv": "55c29ab729deb1127838bee6ca2a7a84f1730e5df666ce6d66a62a773779f03a",
    "sourcedata/dataset3.csv": "7d766fa2380569d02591d0fed0553f9395857011bbd4b69d55e04c3dca262409",
    "sourcedata/dataset4.csv": "347e1060b5c65dda2d48a24eb37ce68a8f50eb7187af2f560b3c32376d9973f6",
    "testdata/testdata.csv": "cb9357c99b6e733e7da4361b2d16607f993f66942ad11a84a78c854cfeae5938",
}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundled")
    write_bundled_data(root)
    return root


def test_generator_reproduces_the_bundled_files_byte_for_byte(bundled):
    written = sorted(str(p.relative_to(bundled)) for p in bundled.rglob("*.csv"))
    assert written == sorted(BUNDLED)
    for relative, digest in BUNDLED.items():
        assert hashlib.sha256((bundled / relative).read_bytes()).hexdigest() == digest, relative


def test_bundled_files_pass_validation_and_the_test_set_is_large_enough(bundled):
    for relative in BUNDLED:
        read_validated_csv(bundled / relative)
    test = pd.read_csv(bundled / "testdata" / "testdata.csv")
    assert len(test) >= 200 and 0.2 < test["exited"].mean() < 0.6


def test_source_data_is_shifted_against_practice_data(bundled):
    names = list(BUNDLED)
    practice = pd.concat([pd.read_csv(bundled / p) for p in names[:2]])
    source = pd.concat([pd.read_csv(bundled / p) for p in names[2:4]])
    assert ks_test(practice, source, 0.01, 30)["verdict"] == "drift"
    assert source["lastmonth_activity"].median() < practice["lastmonth_activity"].median()
    assert source["number_of_employees"].median() > practice["number_of_employees"].median()


def test_generator_is_deterministic_and_seed_dependent():
    assert generate(50, "source", seed=3).equals(generate(50, "source", seed=3))
    assert not generate(50, "source", seed=3).equals(generate(50, "source", seed=4))
    assert np.isclose(generate(20000, "practice", seed=1)["exited"].mean(), 0.34, atol=0.05)

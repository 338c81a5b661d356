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
    "practicedata/dataset1.csv": "8b347142db65f34e7c249c8d8a1f06bde2414d295dfb84dbced310a2d16a78a3",
    "practicedata/dataset2.csv": "bd87ef1c09b41cdd3495d92c5f2ab64e3452df7784ff0b6f2c884882fc0d1301",
    "sourcedata/dataset3.csv": "1e8837df89f0808bd0e27b7c8b5006b66ae288b9de435977fcf8e10d89fae3fc",
    "sourcedata/dataset4.csv": "98dc70348e353e70aa4eff65b5a167f7f77aab880f6493d28df8bf0d4c1cb583",
    "testdata/testdata.csv": "c3c5c3946e31ea0b6c07e230b831bbc6a7db63b7bd589d8fddac5d5bf878a000",
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

"""The floor of the ingestion benchmark: read every CSV of a folder with pyarrow alone.

No validation, no deduplication, nothing written.

    python bench/pyarrow_read.py INPUT_FOLDER
"""

import os
import sys

import pyarrow as pa
import pyarrow.csv as pacsv


def read_all(input_folder: str) -> pa.Table:
    names = sorted(name for name in os.listdir(input_folder) if name.endswith(".csv"))
    return pa.concat_tables([pacsv.read_csv(os.path.join(input_folder, name)) for name in names])


if __name__ == "__main__":
    read_all(sys.argv[1])

"""Course-style ingestion, the baseline of the benchmark (not used by the pipeline).

What the classic course solution does: read each CSV with pandas and append
it to the merged frame with ``pd.concat`` inside the loop, then
``drop_duplicates`` and ``to_csv``.

    python bench/course_ingestion.py INPUT_FOLDER OUTPUT_FOLDER
"""

import os
import sys

import pandas as pd


def merge_multiple_dataframe(input_folder: str, output_folder: str) -> None:
    final = pd.DataFrame()
    for name in sorted(os.listdir(input_folder)):
        if name.endswith(".csv"):
            final = pd.concat([final, pd.read_csv(os.path.join(input_folder, name))])
    final = final.drop_duplicates()
    os.makedirs(output_folder, exist_ok=True)
    final.to_csv(os.path.join(output_folder, "finaldata.csv"), index=False)


if __name__ == "__main__":
    merge_multiple_dataframe(sys.argv[1], sys.argv[2])

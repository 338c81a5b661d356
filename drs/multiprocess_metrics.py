"""The workers' shared metrics folder (prometheus_client's multiprocess mode), kept bounded.

Every gunicorn worker writes its counters and histograms to its own files, ``<kind>_<pid>.db``
(prometheus_client names them), and a scrape sums every file in the folder. A worker that is
restarted leaves its files behind, and they must keep counting (a counter never goes back), so
without care the folder grows by two files per restart for as long as the server runs and every
scrape reads them all. Here, when gunicorn's master sees a worker gone (its child_exit hook,
drs/gunicorn_conf.py), `merge_dead_worker` adds that worker's values into one archive file per
kind (``<kind>_archive.db``, METRICS_ARCHIVE_FILE) and removes its files: the folder holds the
live workers' files and at most one archive per kind, and the sums stay the same.

A scrape must never see the dead worker's values both in the archive and in its own file, or in
neither: `MergedCollector` (the collector of drs.api.metrics) reads the folder under a shared
lock on METRICS_LOCK_FILE, and the merge takes it exclusively for the few milliseconds it needs.

Standard library and prometheus_client only: the master imports this, never Flask or the models.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
from collections.abc import Iterator

from prometheus_client import multiprocess
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

from drs.files import METRICS_ARCHIVE_FILE, METRICS_LOCK_FILE

# The kinds whose values add up across processes. Gauges are not merged: a "live" gauge's files go
# with its worker (mark_process_dead), the others keep one series per pid by design.
SUMMED_KINDS = ("counter", "histogram", "summary")


@contextlib.contextmanager
def _folder_lock(folder: str, exclusive: bool) -> Iterator[None]:
    fd = os.open(os.path.join(folder, METRICS_LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


class MergedCollector(MultiProcessCollector):
    """prometheus_client's multiprocess collector, reading the folder while no merge is under way."""

    def collect(self):
        with _folder_lock(self._path, exclusive=False):
            files = glob.glob(os.path.join(self._path, "*.db"))
            # merge() reads every file before it returns: the values are taken under the lock.
            return list(self.merge(files, accumulate=True))


def merge_dead_worker(folder: str, pid: int) -> int:
    """Fold the files of the worker `pid`, which has exited, into the folder's archive files and remove
    them; the "live" gauges of that worker are dropped (prometheus_client's mark_process_dead).
    Returns how many files were merged."""
    multiprocess.mark_process_dead(pid, folder)
    merged = 0
    with _folder_lock(folder, exclusive=True):
        for kind in SUMMED_KINDS:
            dead = os.path.join(folder, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            archive = os.path.join(folder, METRICS_ARCHIVE_FILE.format(kind=kind))
            totals: dict[str, float] = {}
            for path in (archive, dead):
                if os.path.exists(path):
                    for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(path):
                        totals[key] = totals.get(key, 0.0) + value
            # Written beside the archive under a name a scrape does not read (*.db), then renamed over it.
            partial = archive + ".partial"
            with contextlib.suppress(FileNotFoundError):
                os.remove(partial)
            values = MmapedDict(partial)
            try:
                for key, total in totals.items():
                    values.write_value(key, total, 0.0)
            finally:
                values.close()
            os.replace(partial, archive)
            os.remove(dead)
            merged += 1
    return merged

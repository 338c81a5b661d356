"""gunicorn settings `make serve` passes (--config): metrics summed across the workers, no token in the log.

GET /metrics under several workers uses prometheus_client's multiprocess mode: each worker
adds its counts to its own files in the folder PROMETHEUS_MULTIPROC_DIR names, and a scrape,
whichever worker answers, sums every worker's files (a worker that died included: a counter
never goes back). The folder must be named before a worker imports prometheus_client, belong
to one server, and start empty. This file runs in gunicorn's master before any worker
exists, and the workers inherit its environment, so here:

- Each server start gets a fresh private folder, made by tempfile.mkdtemp (a unique name,
  mode 0700) in the temp folder ($TMPDIR, else /tmp) and named after the master's pid. Two
  servers never share one, whatever their ports, and a second server started by mistake on
  a busy port cannot empty the running one's. A reload (SIGHUP runs this file again in the
  same master) keeps it; a new master (SIGUSR2) makes its own.
- The master removes it when it exits (on_exit). One killed with SIGKILL cannot, so every
  start also removes this user's folders whose master no longer runs: a crash leaves one
  small folder behind until the next start, never a growing pile.
- A worker gone (restarted, killed, timed out): its files are merged into one archive file per
  kind and removed (child_exit, drs.multiprocess_metrics), so the folder holds the live
  workers' files and the archive, and a scrape reads a bounded number of files.
- A PROMETHEUS_MULTIPROC_DIR set by the operator is used as given and emptied of its metric
  files at start, once this server listens; it is never removed.

The access log (ACCESS_LOG=-) is written without query strings: with token_in_query, a
browser's ?token= would be in every line. gunicorn's error log quotes a malformed request line
or header whole: each worker's error log passes through the API's RedactQueryToken.

A request gunicorn refuses before the app sees it (a malformed request line 400, a request line
over limit_request_line 414, a header over limit_request_field_size 431) is answered as the API
answers every error, JSON ``{"error": ...}``, in place of gunicorn's HTML page.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import stat
import tempfile

from gunicorn import util

_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "drs-metrics-"

# gunicorn's default format, with the path in place of the request line (which holds the query
# string) and no referrer (a page opened with ?token= would be the referrer of its images).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'


def _json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's util.write_error with the API's JSON body; the request line is not echoed back."""
    error = f"{reason}: {mesg}" if status_int in (414, 431) else reason  # these say which limit
    body = json.dumps({"error": error}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin1") + body)


# The workers (forked from this master) call util.write_error by its module attribute.
util.write_error = _json_error


def post_worker_init(worker):
    from drs.api.security import RedactQueryToken  # the app is loaded in the worker by now

    worker.log.error_log.addFilter(RedactQueryToken())


def _maker(folder: str) -> int | None:
    """The pid of the master that made `folder`, or None for a folder not made by this file."""
    folder = os.path.abspath(folder)
    match = re.fullmatch(re.escape(_PREFIX) + r"(\d+)-\w+", os.path.basename(folder))
    if match is None or os.path.dirname(folder) != os.path.abspath(tempfile.gettempdir()):
        return None
    return int(match.group(1))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove_folders_of_dead_masters() -> None:
    for folder in glob.glob(os.path.join(tempfile.gettempdir(), _PREFIX + "*")):
        pid = _maker(folder)
        if pid is None or _running(pid):
            continue
        try:
            info = os.lstat(folder)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            shutil.rmtree(folder, ignore_errors=True)


def _metrics_folder() -> tuple[str, bool]:
    """The workers' metrics folder, and whether this master made it (and so removes it)."""
    folder = os.environ.get(_ENV)
    if folder and _maker(folder) is None:
        return folder, False
    if folder and _maker(folder) == os.getpid() and os.path.isdir(folder):
        return folder, True
    _remove_folders_of_dead_masters()
    folder = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
    os.environ[_ENV] = folder
    return folder, True


_FOLDER, _MADE_HERE = _metrics_folder()


def when_ready(server):
    # Listening, so no other server uses this address: an operator's folder starts empty.
    if not _MADE_HERE:
        for path in glob.glob(os.path.join(_FOLDER, "*.db")):
            os.remove(path)
    server.log.info("metrics of every worker in %s", _FOLDER)


def child_exit(server, worker):
    # Imported by the master only when a worker has gone; gunicorn's --chdir put the project on sys.path.
    try:
        from drs.multiprocess_metrics import merge_dead_worker

        # Its counts folded into the archive files: the folder stays bounded however often workers restart.
        merge_dead_worker(_FOLDER, worker.pid)
    except Exception as exc:  # the master must go on: the worse outcome is one worker's files left behind
        server.log.warning("could not merge the metrics of worker %s in %s: %s", worker.pid, _FOLDER, exc)


def on_exit(server):
    if _MADE_HERE:
        shutil.rmtree(_FOLDER, ignore_errors=True)

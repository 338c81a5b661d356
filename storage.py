"""File helpers: atomic writes, hashes, the production layout, locks, JSON lines.

Standard library only, so the cheap cron path can use it.

Production layout (``prod_deployment_path``)::

    versions/v0003/{trainedmodel.pkl, latestscore.txt, ingestedfiles.txt, ingestedfiles.json, manifest.json}
    current -> versions/v0003          (a symlink, switched with one rename)
    trainedmodel.pkl -> current/trainedmodel.pkl   (and the other course files)
    deployments.jsonl                  (every deploy and rollback, appended)

Switching ``current`` is a single ``rename(2)``, so a reader (or a process
killed mid-deploy) sees either the whole old version or the whole new one.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path

from settings import (
    INGESTED_DETAIL_FILE,
    INGESTED_RECORD_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    SCORE_FILE,
    PipelineError,
)

COURSE_FILES = (MODEL_FILE, SCORE_FILE, INGESTED_RECORD_FILE)
PUBLISHED_FILES = (*COURSE_FILES, INGESTED_DETAIL_FILE, MANIFEST_FILE)
VERSIONS_DIR = "versions"
CURRENT_LINK = "current"
DEPLOYMENT_LOG = "deployments.jsonl"
_VERSION_RE = re.compile(r"^v(\d{4,})$")


# --- atomic writes -------------------------------------------------------------

def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path):
    """Yield a temp path in target's folder; on success it replaces target in one rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; outputs are meant to be read by others
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_bytes_atomic(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: Path, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: Path, value) -> None:
    write_text_atomic(target, json.dumps(value, indent=2, sort_keys=True) + "\n")


def append_jsonl(target: Path, record: dict) -> None:
    """Append one JSON line; O_APPEND keeps concurrent writers' lines whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_jsonl(path: Path, last: int | None = None) -> list[dict]:
    """Records of a JSON-lines file, skipping a torn last line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    if last is not None:
        lines = lines[-last:]
    records = []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return records


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --- the input folder, seen cheaply ----------------------------------------------

def list_input_csvs(folder: Path) -> list[Path]:
    """Every *.csv file (not folder) directly in folder, in sorted name order."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except FileNotFoundError:
        raise PipelineError(f"input folder not found: {folder}") from None
    except NotADirectoryError:
        raise PipelineError(f"input folder is not a folder: {folder}") from None
    return [Path(entry.path) for entry in entries if entry.name.endswith(".csv") and entry.is_file()]


def fingerprint_files(paths: list[Path], known: dict | None = None) -> dict[str, dict]:
    """name -> {sha256, size, mtime_ns} for each file.

    A file whose size and mtime match `known` reuses its recorded hash, so a
    tick over years of unchanged files does not re-read them.
    """
    known = known or {}
    prints = {}
    for path in paths:
        stat = path.stat()
        previous = known.get(path.name)
        if previous and previous.get("size") == stat.st_size and previous.get("mtime_ns") == stat.st_mtime_ns:
            sha = previous["sha256"]
        else:
            sha = sha256_file(path)
        prints[path.name] = {"sha256": sha, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return prints


CHECKED_FILE = "checkedfiles.json"


def remember_checked(log_folder: Path, version: str | None, prints: dict) -> None:
    """Input files already weighed against deployed `version` without redeploying.

    The cron tick does not treat them as new again until production changes.
    """
    write_json_atomic(Path(log_folder) / CHECKED_FILE, {"version": version, "files": prints})


# --- production: versions, the current link, manifests ------------------------

def version_sort_key(version: str) -> int:
    match = _VERSION_RE.match(version)
    return int(match.group(1)) if match else -1


def list_versions(prod_folder: Path) -> list[str]:
    try:
        names = os.listdir(Path(prod_folder) / VERSIONS_DIR)
    except FileNotFoundError:
        return []
    return sorted((n for n in names if _VERSION_RE.match(n)), key=version_sort_key)


def next_version(prod_folder: Path) -> str:
    existing = list_versions(prod_folder)
    number = version_sort_key(existing[-1]) + 1 if existing else 1
    return f"v{number:04d}"


def current_version_dir(prod_folder: Path) -> Path | None:
    """The folder of the deployed version, or None when nothing is deployed."""
    link = Path(prod_folder) / CURRENT_LINK
    try:
        target = os.readlink(link)
    except (FileNotFoundError, OSError):
        return None
    folder = (link.parent / target)
    return folder if folder.is_dir() else None


def read_manifest(version_dir: Path) -> dict | None:
    try:
        return json.loads((Path(version_dir) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def deployed_state(prod_folder: Path) -> dict | None:
    """Manifest of the deployed version plus its folder, or None when nothing is deployed."""
    version_dir = current_version_dir(prod_folder)
    if version_dir is None:
        return None
    manifest = read_manifest(version_dir)
    if manifest is None:
        return None
    return {**manifest, "folder": str(version_dir)}


def switch_current(prod_folder: Path, version: str) -> None:
    """Point `current` at versions/<version> with one atomic rename."""
    prod_folder = Path(prod_folder)
    tmp_link = prod_folder / f".{CURRENT_LINK}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    os.symlink(Path(VERSIONS_DIR) / version, tmp_link)
    os.replace(tmp_link, prod_folder / CURRENT_LINK)
    _fsync_dir(prod_folder)


def ensure_course_links(prod_folder: Path) -> None:
    """Make the course file names in prod_folder point through `current`.

    The links never change once made, so they are never half-switched; a
    plain file left by a course-style deployment is replaced by its link.
    """
    prod_folder = Path(prod_folder)
    for name in PUBLISHED_FILES:
        link = prod_folder / name
        wanted = str(Path(CURRENT_LINK) / name)
        try:
            if os.readlink(link) == wanted:
                continue
        except FileNotFoundError:
            pass
        except OSError as exc:  # a regular file: readlink gives EINVAL
            if exc.errno != errno.EINVAL:
                raise
        tmp_link = prod_folder / f".{name}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp_link.unlink()
        os.symlink(wanted, tmp_link)
        os.replace(tmp_link, link)


# --- a lock the kernel releases when its holder dies ------------------------------

class LockBusy(Exception):
    pass


@contextlib.contextmanager
def exclusive_lock(path: Path):
    """Hold an flock on path for the block; raise LockBusy if another process has it.

    flock belongs to the open file, so a run killed with SIGKILL releases it
    as it dies: a stale lock file never blocks the next tick.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusy(str(path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
        yield
    finally:
        os.close(fd)

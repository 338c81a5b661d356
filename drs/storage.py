"""File helpers: atomic writes, hashes, the input folder seen cheaply, locks, JSON lines.

Standard library only, so the cheap cron path can use it. The production layout
is drs.production's alone; the file names are in drs.files.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from drs.config import PipelineError


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds: the timestamp of every record."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


# --- atomic writes -------------------------------------------------------------


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable (best effort: some file systems refuse)."""
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
        fsync_dir(target.parent)
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
    """Append one JSON line, whole or not at all as far as readers can tell.

    The line goes out in one write(2) on an O_APPEND descriptor, so
    concurrent writers' lines never interleave. A short write (a full disk)
    is an OSError, and the torn line it leaves is closed off by the next
    append, which starts on a new line: one lost record, never two.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(errno.ENOSPC, f"short write to {target}: {written} of {len(line)} bytes (disk full?)")
    finally:
        os.close(fd)


def read_jsonl(path: Path, last: int | None = None) -> list[dict]:
    """Records of a JSON-lines file, oldest first; a torn line is skipped and reported in the log."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    if last is not None:
        lines = lines[-last:]
    records, torn = [], 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            torn += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            torn += 1
    if torn:
        logging.getLogger("storage").warning("%s: skipped %d torn or unreadable line(s)", path, torn)
    return records


def read_json(path: Path) -> dict:
    """A JSON object from a file, or {} when the file is missing, unreadable or not an object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: nesting deeper than json can follow
        return {}
    return value if isinstance(value, dict) else {}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --- the input folder, seen cheaply ----------------------------------------------


def display_name(name: str) -> str:
    """A file name safe to log and write as UTF-8 on one line: bytes that are not UTF-8 shown as
    \\xNN, control characters (a newline would forge a log line) as \\n, \\x1b and so on."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(repr(c)[1:-1] if c.isprintable() is False and c != " " else c for c in text)


def input_csvs(folder: Path) -> tuple[list[Path], dict[str, str]]:
    """The *.csv files directly in folder that may be read, and those refused unread.

    Returns (paths in sorted name order, {display name: reason}). Refused: a
    link whose target is outside the folder, a name that is not valid UTF-8.
    Skipped without a word: whatever is not a regular file (folders, FIFOs,
    sockets, devices, broken links); nothing is opened here.
    """
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except FileNotFoundError:
        raise PipelineError(f"input folder not found: {folder}") from None
    except NotADirectoryError:
        raise PipelineError(f"input folder is not a folder: {folder}") from None
    inside = Path(folder).resolve()
    paths, refused = [], {}
    for entry in entries:
        try:
            if not entry.name.endswith(".csv") or not entry.is_file():  # is_file follows links, opens nothing
                continue
        except OSError:  # a link loop, a permission problem: not a file we can use
            continue
        if entry.is_symlink() and not Path(entry.path).resolve().is_relative_to(inside):
            refused[display_name(entry.name)] = "a link to outside the input folder: not read"
        elif display_name(entry.name) != entry.name:
            refused[display_name(entry.name)] = "file name is not valid UTF-8 or holds control characters: rename it"
        else:
            paths.append(Path(entry.path))
    return paths, refused


def list_input_csvs(folder: Path) -> list[Path]:
    """The *.csv files of folder that may be read, in sorted name order (input_csvs without the refused)."""
    return input_csvs(folder)[0]


def fingerprint_files(paths: list[Path], known: dict | None = None, max_bytes: int | None = None) -> dict[str, dict]:
    """name -> {sha256, size, mtime_ns, ctime_ns, inode} for each file still there (one gone since listing is
    left out).

    A file whose size, mtime, ctime and inode all match `known` reuses its recorded hash, so a tick over
    years of unchanged files does not re-read them; an edit that restored the size and the mtime still
    moved the ctime (as a file put back with `cp -p` has a new one), so it is read again. A file over
    `max_bytes` is not read: its "sha256" is "unread:<size>:<mtime_ns>",
    stable while the file is unchanged (ingestion rejects it unread).
    """
    known = known or {}
    prints = {}
    for path in paths:
        try:
            stat = path.stat()
            print_now = stat_fingerprint(stat)
            previous = known.get(path.name)
            if previous and all(previous.get(key) == value for key, value in print_now.items()):
                sha = previous["sha256"]
            elif max_bytes is not None and stat.st_size > max_bytes:
                sha = f"unread:{stat.st_size}:{stat.st_mtime_ns}"
            else:
                sha = sha256_file(path)
        except FileNotFoundError:
            continue
        prints[path.name] = {"sha256": sha, **print_now}
    return prints


def stat_fingerprint(stat: os.stat_result) -> dict[str, int]:
    """What tells a file unchanged without reading it: size, mtime, ctime and inode (all four must match)."""
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns, "inode": stat.st_ino}


def remove_stale_temp_files(*folders: Path) -> list[Path]:
    """Remove the temp files (".<name>.<random>.tmp") that a killed run left in `folders`.

    Call it only while holding the tick lock: every writer of these folders takes it.
    """
    removed = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and not entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


# --- a lock the kernel releases when its holder dies ------------------------------


class LockBusy(Exception):
    """The lock is held by another process: `holder` says which and since when; `pid` and `age_seconds`
    are those figures (None when the lock file does not say)."""

    def __init__(self, holder: str, pid: int | None = None, age_seconds: float | None = None):
        super().__init__(holder)
        self.holder, self.pid, self.age_seconds = holder, pid, age_seconds


def _busy(fd: int) -> LockBusy:
    """The LockBusy naming the holder, from what it wrote into the lock file."""
    try:
        pid, _, since = os.pread(fd, 200, 0).decode("utf-8", "replace").strip().partition(" ")
    except OSError:
        pid, since = "", ""
    if not since:
        return LockBusy("(holder unknown)")
    try:
        age = time.time() - datetime.datetime.strptime(since, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        age = None
    return LockBusy(f"since {since} (pid {pid})", int(pid) if pid.isdigit() else None, age)


@contextlib.contextmanager
def exclusive_lock(path: Path, wait_seconds: float = 0.0):
    """Hold an flock on path for the block, waiting up to `wait_seconds` for it; else raise LockBusy.

    flock belongs to the open file, so a run killed with SIGKILL releases it
    as it dies: a stale lock file never blocks the next tick.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _busy(fd) from None
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)

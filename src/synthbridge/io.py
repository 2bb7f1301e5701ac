"""Files on disk: atomic writes, safe folder names, run records.

Nothing a user made is lost: every file is written to a temporary name in the same folder and
renamed into place, so a crash never leaves a truncated file behind.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from synthbridge.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


def make_readable(folder: str | os.PathLike) -> None:
    """Give a folder made in a private temporary place (mkdtemp: 0700) the usual permissions under the umask."""
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o777 & ~_UMASK)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it is renamed onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results should be as readable as any other file
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # again: some writers (safetensors' save_file) recreate the file as 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# The format of the folders synthbridge makes (sets, styles, adapters, runs, experiments): written into each one's
# record (generation.json, invert.json, lora.json, config.json, experiment.json) as "format". A folder is only
# continued or reused by the version that reads its format; folders from before format 1 have none (0).
FORMAT = 1


def check_format(record: dict, folder: str | os.PathLike, what: str,
                 again: str = "make it again (--overwrite, or a new --out)") -> None:
    """Refuse to continue or reuse a folder made by a synthbridge of another folder format, in one line (`what`:
    "a synthetic set", "an experiment folder", ...; `again`: how to make it with this version)."""
    found = record.get("format", 0)
    if found != FORMAT:
        raise UserError(f"{str(folder)!r} is {what} in folder format {found}, made by another synthbridge version "
                        f"(this one reads format {FORMAT}); {again}, or use the synthbridge that made it")


def made_once(final: str | os.PathLike, make: Callable[[Path], object]) -> Path:
    """The folder `final`, made by `make(folder)` at a private temporary name and renamed into place whole, so
    that workers on several nodes of a shared filesystem need no lock between them: the first rename wins, a
    worker whose rename finds `final` there discards its own copy (same inputs, same set). A folder already at
    `final` (finished, or made in place by an older version) is handed to `make` as it is, to reuse or continue.

    The temporary name is `.<name>.<host>.<pid>.partial`; a partial folder left by a process of this host that
    is gone (killed, timed out) is taken over and continued, so an interrupted job resumes its own work."""
    final = Path(final)
    if final.exists():
        make(final)
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    host = safe_name(socket.gethostname()) or "host"
    mine = final.parent / f".{final.name}.{host}.{os.getpid()}.partial"
    for left in sorted(final.parent.glob(f".{final.name}.{host}.*.partial")):
        pid = left.name.removesuffix(".partial").rpartition(".")[2]
        if left != mine and pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):  # another process took it over first
                os.rename(left, mine)
                break
    make(mine)
    try:
        os.rename(mine, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(mine, ignore_errors=True)
    return final


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_json_if_present(path: str | os.PathLike) -> Any | None:
    """The JSON at `path`, or None when there is no such file."""
    return read_json(path) if Path(path).is_file() else None


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and flush it to disk (a crash loses at most the line being written)."""
    line = json.dumps(record, default=_json_default, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON lines. A torn last line (an append cut short by a crash) is left out, with a warning that says so;
    any other line that is not a JSON record is an error naming the file and the line: never skipped silently."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    filled = [number for number, line in enumerate(lines) if line.strip()]
    records = []
    for number in filled:
        try:
            record = json.loads(lines[number])
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        elif number == filled[-1]:
            logging.getLogger(__name__).warning("%s: its last line is cut short (a write was interrupted); "
                                                "1 line left out", path)
        else:
            raise UserError(f"{str(path)!r} line {number + 1} is not a JSON record ({lines[number][:60]!r}); "
                            f"repair or remove that line")
    return records


PROGRESS_ENV = "SYNTHBRIDGE_PROGRESS"  # "0": no progress bars (--no-progress; worker processes inherit it)
LOG_INTERVAL = 30.0  # seconds between redraws of a bar whose stderr is not a terminal (a log file, a SLURM job)


def bars_off() -> bool:
    """Whether this command runs with `--no-progress` (its worker processes inherit the switch)."""
    return os.environ.get(PROGRESS_ENV) == "0"


def progress(iterable=None, *, enabled: bool = True, **kwargs):
    """tqdm as every long piece of work shows it: off with `--no-progress` (or `enabled` False: not the main
    process, a quiet caller); where stderr is not a terminal, redrawn at most every LOG_INTERVAL seconds, so that
    a log gets a line every half minute rather than one per step."""
    from tqdm.auto import tqdm

    off = not enabled or bars_off()
    if not off and not sys.stderr.isatty():
        kwargs.setdefault("mininterval", LOG_INTERVAL)
    return tqdm(iterable, disable=off, **kwargs)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def safe_name(name: str) -> str:
    """A folder name for a class name: safe on every filesystem, readable, and unique per name.

    Spaces, slashes and other unsafe characters become '_'; non-ASCII letters are kept (they are
    valid file names) but normalised (NFC). When anything was changed, a short hash of the original
    name is appended so that two different class names can never share a folder.
    """
    normal = unicodedata.normalize("NFC", name)
    cleaned = "".join(c if (c.isalnum() or c in "-_.+") else "_" for c in normal).strip("._") or "class"
    cleaned = cleaned[:80]
    if cleaned != name:
        cleaned += "-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]
    return cleaned


def ensure_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create `path` if needed and check that files can be written there."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {str(path)!r} names a file, not a folder; pick a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise UserError(f"cannot write to {what} {str(path)!r} ({exc.strerror}); choose a writable folder") from None
    return path


def git_revision() -> str | None:
    """The git commit of the synthbridge source tree, with '-dirty' if it has local changes."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Versions and machine facts recorded next to every result (gathered once per process)."""
    return copy.deepcopy(_environment())


@functools.cache
def _environment() -> dict:
    versions = {"python": sys.version.split()[0]}
    for module in ("synthbridge", "torch", "torchvision", "timm", "diffusers", "transformers", "accelerate",
                   "safetensors", "numpy"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # a missing optional package is recorded as absent
            versions[module] = None
    info = {"versions": versions, "git_revision": git_revision(), "platform": platform.platform(),
            "command": sys.argv}
    try:
        import torch

        info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        info["torch_threads"] = torch.get_num_threads()
    except Exception:
        pass
    return info

"""The results store: one JSON file per finished cell, EXP_DIR/results/<cell>.json, and EXP_DIR/results.jsonl, the
same records one per line, for people and tools that read one file.

Several workers (processes, SLURM array tasks on several nodes) may finish cells at once, on a shared filesystem
where file locks may be no-ops (NFS mounted `nolock`) or unreliable across nodes: nothing here depends on a lock.
A cell's record is written to a temporary file of its own and hard-linked to its name, which fails if the name
exists (atomic on local filesystems and NFS alike): the first writer of a cell wins, a second discards its copy.
The files are the store; results.jsonl is rewritten from them (to a temporary file, then renamed) after each
record, so it may lag a record written at the same moment by another node, never lose one: the next rewrite, or
`read_results`, has it. results.jsonl is never read back: a line without its cell's file is no record.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

from synthbridge.io import check_format, read_json, write_text

RESULTS = "results.jsonl"
RESULTS_DIR = "results"


@contextmanager
def locked(path: Path):
    """An exclusive lock file at `path` (created, with its folder, if needed), held for the block. It only saves
    work (two workers on one node do not make the same thing twice): correctness never depends on it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield


def _cell_files(exp_dir: Path) -> list[dict]:
    records = [read_json(path) for path in (exp_dir / RESULTS_DIR).glob("*.json")]  # each linked whole: never torn
    return sorted(records, key=lambda r: (r.get("finished_at") or "", r.get("cell") or ""))


def read_results(exp_dir: str | Path) -> list[dict]:
    """Every stored record, one per cell (its file in results/), in the order the cells finished."""
    return _cell_files(Path(exp_dir))


def read_experiment(exp_dir: str | Path) -> tuple[dict, list[dict]]:
    """(experiment.json, the stored records) of an experiment folder with finished cells; anything else is a
    one-line UserError (what `report` and `advise` read)."""
    from synthbridge.errors import UserError

    exp_dir = Path(exp_dir)
    if not (exp_dir / "experiment.json").exists():
        raise UserError(f"{str(exp_dir)!r} is not an experiment folder (no experiment.json); run `synthbridge run` first")
    experiment = read_json(exp_dir / "experiment.json")
    check_format(experiment, exp_dir, "an experiment folder",
                     again="run its grid again into a new --out")
    records = read_results(exp_dir)
    if not records:
        raise UserError(f"{str(exp_dir)!r} has no finished cells yet; run `synthbridge run` first")
    return experiment, records


def append_result(exp_dir: str | Path, record: dict) -> bool:
    """Store `record` unless its cell is already stored; returns whether it was written."""
    exp_dir = Path(exp_dir)
    if any(stored.get("cell") == record["cell"] for stored in read_results(exp_dir)):
        return False
    folder = exp_dir / RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{record['cell']}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, ensure_ascii=False, indent=1, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, folder / f"{record['cell']}.json")
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp)
    write_view(exp_dir)
    return True


def write_view(exp_dir: str | Path) -> None:
    """Rewrite results.jsonl from the store (whole or not at all)."""
    records = read_results(exp_dir)
    write_text(Path(exp_dir) / RESULTS,
               "".join(json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records))

"""The results store: one JSON line per finished cell in EXP_DIR/results.jsonl.

Several workers (processes, SLURM array tasks) may append at once: each append holds an exclusive
lock (`filelock`), so lines never interleave, and a cell already present is not appended again.
Readers keep the first record of each cell id.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

from synthbridge.io import read_jsonl

RESULTS = "results.jsonl"
RESULTS_LOCK = ".results.lock"


@contextmanager
def locked(path: Path):
    """An exclusive lock file at `path` (created, with its folder, if needed), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield


def read_results(exp_dir: str | Path) -> list[dict]:
    path = Path(exp_dir) / RESULTS
    if not path.exists():
        return []
    seen, records = set(), []
    for record in read_jsonl(path):
        if record.get("cell") not in seen:
            seen.add(record.get("cell"))
            records.append(record)
    return records


def append_result(exp_dir: str | Path, record: dict) -> bool:
    """Append `record` unless its cell is already stored; returns whether it was written."""
    path = Path(exp_dir) / RESULTS
    with locked(Path(exp_dir) / RESULTS_LOCK), open(path, "a+", encoding="utf-8") as handle:
        handle.seek(0)
        for line in handle:
            try:
                if json.loads(line).get("cell") == record["cell"]:
                    return False
            except json.JSONDecodeError:
                continue
        handle.seek(0, os.SEEK_END)
        handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True

"""The synthetic folder on disk: which images belong to it, which exist, its manifest, and its lifecycle (a rerun
refused or continued: `prepare_folder`, `is_complete`; generation.json at a run's start and end: `start_record`,
`finish`). What defines the set is `config.SetIdentity`; the images are drawn by `generate`.

Layout (the contract `synthbridge.data.folders.load_synthetic` reads):

    DIR/generation.json               what defines the set (compared on every rerun), counts, timings, runs
    DIR/<safe_name(class)>/00000.png  image `index` of `class` (.webp or .jpg with --image-format)
    DIR/manifest.jsonl                one line per image, sorted by (class order, index)
    DIR/rejected.jsonl                images given up after --max-retries (no PNG), when there are any
    DIR/manifest.<worker>.jsonl       per-process parts while processes run; merged and removed at the end

Why parts: several processes (`--shard i/n`, or `accelerate launch`) write into one folder at once.
Each appends only to its own part, so no two processes ever write the same file; the merge reads the
final manifest plus every part under a file lock, keeps one line per image whose image file exists, sorts,
and writes manifest.jsonl atomically. It is idempotent: merging twice gives the same file.

Why it resumes: an image file is written to a temporary name and renamed into place, and its manifest line is
appended (and fsynced) only after that. So after a crash an image is either listed and complete, or
not listed. An image found on disk without a line (the crash hit between the rename and the append)
is *regenerated*, not re-added: its line would need the seed, and after a retry the seed is not
recoverable from the file; regenerating it costs at most one batch and gives the same pixels.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout
from PIL import Image

from synthbridge.data.folders import MANIFEST
from synthbridge.diffusion.pipeline import GeneratorInfo
from synthbridge.errors import UserError
from synthbridge.generation.config import IMAGE_FORMATS, SET_KEYS, GenerateConfig
from synthbridge.io import (
    FORMAT,
    append_jsonl,
    atomic_path,
    check_format,
    environment,
    read_json,
    read_jsonl,
    safe_name,
    write_json,
    write_text,
)

GENERATION_JSON = "generation.json"
REJECTED = "rejected.jsonl"
LOCK = ".generation.lock"
_PART = re.compile(r"^manifest\.(.+)\.jsonl$")


@dataclass(frozen=True)
class WorkItem:
    """One image of the set: a pure function of (class, index) and the set's parameters."""

    class_position: int  # position of the class in the set's class list (sort order of the manifest)
    class_name: str
    index: int
    suffix: str = ".png"  # the file type of the set (--image-format)

    @property
    def key(self) -> tuple[str, int]:
        return (self.class_name, self.index)

    @property
    def path(self) -> str:
        return image_path(self.class_name, self.index, self.suffix)


def image_path(class_name: str, index: int, suffix: str = ".png") -> str:
    return f"{safe_name(class_name)}/{index:05d}{suffix}"


def work_items(classes: Sequence[str], per_class: int, suffix: str = ".png") -> list[WorkItem]:
    """All images of the set, index-major: a shard or an interrupted run holds every class about equally."""
    return [WorkItem(position, name, index, suffix) for index in range(per_class)
            for position, name in enumerate(classes)]


def stored_image(image: Image.Image, save_size: int | None) -> Image.Image:
    """The image as it is saved: its shorter side resized to `save_size` with PIL's LANCZOS (aspect kept), or as is."""
    width, height = image.size
    if save_size is None or save_size == min(width, height):
        return image
    scale = save_size / min(width, height)
    return image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS)


def write_image(image: Image.Image, path: Path, image_format: str, quality: int, save_size: int | None) -> None:
    """Save `image` to `path` (a temporary name: the caller renames it into place) in the set's format and size."""
    pil_format, _ = IMAGE_FORMATS[image_format]
    options = {} if image_format == "png" else {"quality": quality}
    stored_image(image, save_size).save(path, format=pil_format, **options)


class ImageWriter:
    """Encodes and writes a process's images on a pool of threads while the GPU draws the next batch (PIL's encoders
    release the GIL), and appends each image's manifest line to the process's part only once its file is complete
    and in place, in the order the images were handed over; a line without an image (given up) waits its turn too.
    At most `limit` images wait in memory: handing over more blocks until the oldest are written. Leaving the
    block (also on an error) writes out what was handed over, so a crash keeps every image drawn before it."""

    def __init__(self, part: Path, image_format: str, quality: int, save_size: int | None, *, limit: int,
                 threads: int | None = None):
        self.part, self.options, self.limit = part, (image_format, quality, save_size), max(1, limit)
        self.pool = ThreadPoolExecutor(max_workers=threads or min(8, os.cpu_count() or 1),
                                       thread_name_prefix="write-images")
        self.waiting: deque[tuple[Future | None, dict]] = deque()

    def put(self, image: Image.Image, path: Path, record: dict) -> None:
        self.waiting.append((self.pool.submit(self._write, image, path), record))
        self._settle(self.limit)

    def line(self, record: dict) -> None:
        self.waiting.append((None, record))
        self._settle(self.limit)

    def _write(self, image: Image.Image, path: Path) -> None:
        with atomic_path(path) as tmp:
            write_image(image, tmp, *self.options)

    def _settle(self, keep: int) -> None:
        """Append the lines of finished images at the head of the queue; wait while more than `keep` wait."""
        while self.waiting and (len(self.waiting) > keep or self.waiting[0][0] is None or self.waiting[0][0].done()):
            future, record = self.waiting.popleft()
            if future is not None:
                future.result()  # an error writing the image is raised here, in the generating thread
            append_jsonl(self.part, record)

    def __enter__(self) -> ImageWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            self._settle(0)
        except Exception:  # noqa: BLE001  (already failing: that error is the one to report)
            if kind is None:
                raise
        finally:
            self.pool.shutdown(wait=True)


def split(items: Sequence[WorkItem], index: int, count: int) -> list[WorkItem]:
    """Every `count`-th item starting at `index`: n shards together make exactly the items of one run."""
    return list(items[index::count])


@contextlib.contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """An exclusive lock on the folder, held while generation.json or manifest.jsonl is rewritten."""
    with FileLock(out / LOCK):
        yield


@contextlib.contextmanager
def claim_worker(out: Path, worker: str) -> Iterator[None]:
    """Hold `worker`'s share of the folder for this process; a second process claiming the same share (the
    same command started twice, or a launcher that did not set up its processes) fails at once."""
    try:
        with FileLock(out / f".worker.{worker}.lock", blocking=False):
            yield
    except Timeout:
        raise UserError(f"another process is already generating share {worker} of {str(out)!r}; wait for it, "
                        f"or give each process its own --shard i/n") from None


def part_files(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("manifest.*.jsonl") if _PART.match(p.name))


def read_records(out: Path) -> list[dict]:
    """Every line ever written: the merged files first, then the parts (later lines win in `latest`)."""
    records: list[dict] = []
    for file in [out / MANIFEST, out / REJECTED, *part_files(out)]:
        if file.is_file():
            records.extend(read_jsonl(file))
    return records


def latest(records: Iterable[dict], out: Path) -> dict[tuple[str, int], dict]:
    """One record per image: accepted ones only while their image file exists (a line whose file a crash or a
    user removed is dropped, so the image is made again)."""
    chosen: dict[tuple[str, int], dict] = {}
    for record in records:
        if "class" not in record or "index" not in record:
            continue
        if record.get("status", "accepted") == "accepted" and not (out / record["path"]).is_file():
            continue
        chosen[(record["class"], int(record["index"]))] = record
    return chosen


def pending(out: Path, items: Sequence[WorkItem]) -> list[WorkItem]:
    """The items still to make, after cleaning up what an interrupted run of these items left behind."""
    done = latest(read_records(out), out)
    todo = [item for item in items if item.key not in done]
    for item in todo:
        target = out / item.path
        target.unlink(missing_ok=True)  # an orphan (written, never listed): made again below
        # atomic_path's temporary files of this image, left by a hard kill (only this item's own names,
        # so another process's file in flight is never touched)
        if target.parent.is_dir():
            for stale in target.parent.glob(f".{target.name}.*.tmp{target.suffix}"):
                stale.unlink(missing_ok=True)
    return todo


def merge(out: Path, classes: Sequence[str], remove_parts: Sequence[Path] = ()) -> dict[tuple[str, int], dict]:
    """Fold the parts into manifest.jsonl (+ rejected.jsonl), sorted by (class order, index). Call under
    `folder_lock`. Only `remove_parts` (parts of processes known to be finished) are deleted afterwards:
    other processes may still be appending to theirs."""
    chosen = latest(read_records(out), out)
    order = {name: i for i, name in enumerate(classes)}
    keys = sorted((k for k in chosen if k[0] in order), key=lambda k: (order[k[0]], k[1]))
    accepted = [chosen[k] for k in keys if chosen[k].get("status", "accepted") == "accepted"]
    rejected = [chosen[k] for k in keys if chosen[k].get("status") == "rejected"]
    write_text(out / MANIFEST, "".join(_line(r) for r in accepted))
    if rejected:
        write_text(out / REJECTED, "".join(_line(r) for r in rejected))
    else:
        (out / REJECTED).unlink(missing_ok=True)
    for part in remove_parts:
        part.unlink(missing_ok=True)
    return {k: chosen[k] for k in keys}


def _line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def read_generation(out: Path) -> dict | None:
    file = out / GENERATION_JSON
    return read_json(file) if file.is_file() else None


def write_generation(out: Path, record: dict) -> None:
    write_json(out / GENERATION_JSON, record)


def is_foreign(out: Path) -> bool:
    """A non-empty folder that `generate` did not make (its files would be mixed with ours)."""
    if (out / GENERATION_JSON).is_file():
        return False
    return any(p.name != LOCK and not p.name.startswith((".write-test-", ".worker.")) for p in out.iterdir())


def clear(out: Path, classes: Iterable[str]) -> None:
    """Remove a previous set (for --overwrite): its records and the class folders of its classes only,
    so nothing else a user keeps in the folder is touched."""
    for name in (GENERATION_JSON, MANIFEST, REJECTED):
        (out / name).unlink(missing_ok=True)
    for part in part_files(out):
        part.unlink(missing_ok=True)
    for name in set(classes):
        folder = out / safe_name(name)
        if folder.is_dir():
            shutil.rmtree(folder)


def worker_name(shard: tuple[int, int], process: tuple[int, int]) -> str:
    """Name of a process's manifest part: unique among all processes writing the folder at once."""
    name = f"{shard[0]}of{shard[1]}"
    return name if process[1] == 1 else f"{name}-{process[0]}of{process[1]}"


def part_path(out: Path, worker: str) -> Path:
    return out / f"manifest.{worker}.jsonl"


def class_counts(records: dict[tuple[str, int], dict], classes: Sequence[str], per_class: int,
                 fail_fraction: float = 0.5) -> tuple[dict, list[str]]:
    """Per class: images kept, images given up, images that needed a retry; and the classes where most
    images failed at first try (reported, never silently kept)."""
    counts = {name: {"images": 0, "given_up": 0, "retried": 0, "reasons": {}} for name in classes}
    for (name, _), record in records.items():
        if name not in counts:
            continue
        entry = counts[name]
        entry["images" if record.get("status", "accepted") == "accepted" else "given_up"] += 1
        reasons = record.get("rejected_reasons") or []
        if reasons:
            entry["retried"] += 1
        for reason in reasons:
            entry["reasons"][reason] = entry["reasons"].get(reason, 0) + 1
    failing = []
    for name, entry in counts.items():
        finished = entry["images"] + entry["given_up"]
        entry["missing"] = max(0, per_class - finished)
        if finished and (entry["retried"] / finished > fail_fraction or entry["given_up"] / finished > fail_fraction):
            failing.append(name)
    return counts, failing


__all__ = ["GENERATION_JSON", "LOCK", "MANIFEST", "REJECTED", "WorkItem", "class_counts", "clear", "folder_lock",
           "image_path", "is_foreign", "latest", "merge", "part_files", "part_path", "pending", "read_generation",
           "read_records", "split", "stored_image", "work_items", "worker_name", "write_generation", "write_image"]


# --- the folder's lifecycle: refuse, continue, record, finish ------------------------------------------------

def prepare_folder(out: Path, set_params: dict, overwrite: bool) -> dict | None:
    """The folder's previous record when it may be continued; refuses a foreign folder or other parameters."""
    previous = read_generation(out)
    if previous is None:
        if is_foreign(out) and not overwrite:
            raise UserError(f"{str(out)!r} is not empty and was not made by `synthbridge generate`; pick an empty or "
                            f"new --out, or pass --overwrite to write into it anyway")
        return None
    if not overwrite:
        check_format(previous, out, "a synthetic set")
    old = previous.get("set", {})
    if differing := [key for key in SET_KEYS if old.get(key) != set_params.get(key)]:
        if not overwrite:
            shown = "; ".join(f"{k}: {_short(old.get(k))} -> {_short(set_params.get(k))}" for k in differing[:3])
            raise UserError(f"{str(out)!r} holds a set made with other parameters ({', '.join(differing)}; {shown}); "
                            f"rerun with the same ones to resume or extend it (only --per-class may grow), "
                            f"pass --overwrite to replace it, or pick a new --out")
    return previous


def is_complete(out: Path, previous: dict | None, config: GenerateConfig, classes: list[str],
                 num_processes: int) -> bool:
    """Whether one process asked for an unsharded set its folder already holds in full: status complete, at least
    `per_class` images of every class asked for, every manifest item of this run present."""
    if previous is None or config.overwrite or config.shard is not None or num_processes != 1:
        return False
    if previous.get("status") != "complete" or previous.get("per_class", 0) < config.per_class:
        return False
    if not set(classes) <= set(previous.get("classes", [])):
        return False
    items = work_items(classes, config.per_class, IMAGE_FORMATS[config.image_format][1])
    done = latest(read_records(out), out)
    return all(item.key in done for item in items)


def start_record(previous: dict | None, set_params: dict, config: GenerateConfig, info: GeneratorInfo,
            classes: list[str]) -> dict:
    """generation.json at the start of a run: the set, its size (only ever grows), this config."""
    per_class = max(config.per_class, (previous or {}).get("per_class", 0))
    record = dict(previous or {})
    record.update(format=FORMAT, status="running", set=set_params, per_class=per_class, classes=classes,
                  config=json.loads(json.dumps(config.to_dict())),
                  generator={"name": info.name, "folder": info.folder, "fingerprint": info.fingerprint,
                             "safety_checker": info.safety_checker, "defaults": info.defaults,
                             "pipeline": info.pipeline_class},
                  environment=environment())
    record.setdefault("runs", [])
    return record


def finish(out: Path, classes: list[str], finished_parts: list[Path], runs: list[dict]) -> dict:
    """Merge the parts into manifest.jsonl, count, and write the final generation.json (under the lock)."""
    record = read_generation(out) or {}
    records = merge(out, classes, remove_parts=finished_parts)
    per_class = int(record.get("per_class", 0))
    counts, failing = class_counts(records, classes, per_class)
    images = sum(c["images"] for c in counts.values())
    missing = sum(c["missing"] for c in counts.values())
    last = runs[0] if len(runs) == 1 else {
        "generated": sum(r["generated"] for r in runs), "seconds": max(r["seconds"] for r in runs)}
    record.update(
        status="complete" if missing == 0 else "incomplete",
        counts={"images": images, "given_up": sum(c["given_up"] for c in counts.values()), "missing": missing,
                "per_class": counts},
        failing_classes=failing,
        seconds=last["seconds"],
        images_per_second=round(last["generated"] / last["seconds"], 4) if last["seconds"] > 0 else None,
        runs=record.get("runs", []) + runs)
    write_generation(out, record)
    return record


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."

"""Manifests are never skipped silently (issue 23): a torn last line is left out with a warning that counts it,
any other unreadable line is one error naming the file and the line."""

from __future__ import annotations

import json

import pytest

from helpers import write_synthetic_folder
from synthbridge.data import load_synthetic
from synthbridge.errors import UserError
from synthbridge.io import read_jsonl

CLASSES = ["0", "1"]


def test_a_torn_last_line_is_left_out_and_said(tmp_path, caplog):
    folder = write_synthetic_folder(tmp_path / "syn", CLASSES, per_class=16, size=8)
    manifest = folder / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # an append cut short
    with caplog.at_level("WARNING"):
        images = load_synthetic(folder, CLASSES)
    assert len(images) == 31 and "last line is cut short" in caplog.text and "1 line left out" in caplog.text


def test_an_unreadable_line_inside_a_manifest_is_one_error_naming_it(tmp_path):
    folder = write_synthetic_folder(tmp_path / "syn", CLASSES, per_class=16, size=8)
    manifest = folder / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    lines[10], lines[20] = lines[10][:15], "[1, 2]"  # two damaged lines in the middle
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"manifest.jsonl' line 11 is not a JSON record.*repair or remove that line"):
        load_synthetic(folder, CLASSES)


def test_blank_lines_and_a_complete_last_line_without_newline_are_read(tmp_path, caplog):
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps({"a": 1}) + "\n\n" + json.dumps({"a": 2}))
    with caplog.at_level("WARNING"):
        assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert caplog.text == ""


def test_a_plain_imagefolder_with_class_named_folders_is_a_synthetic_set(tmp_path):
    from PIL import Image

    classes = ["green tree frog", "bull frog"]
    root = tmp_path / "plain"
    for name in classes:
        (root / name).mkdir(parents=True)
        for index in range(3):
            Image.new("RGB", (8, 8), (index * 40, 0, 0)).save(root / name / f"{index}.png")
    images = load_synthetic(root, classes)
    assert len(images) == 6 and sorted(images.targets) == [0, 0, 0, 1, 1, 1]
    (root / "tree frog").mkdir()
    Image.new("RGB", (8, 8)).save(root / "tree frog" / "0.png")
    with pytest.raises(UserError, match=r"'tree frog', which matches no class.*e\.g\. 'green tree frog' or "
                                        r"'green_tree_frog-[0-9a-f]+'"):
        load_synthetic(root, classes)

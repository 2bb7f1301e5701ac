"""`--out` naming an existing file is one line in words and exit 2 for every command that writes a folder (issue 23),
and the file is left as it was."""

import pytest
import yaml

from synthbridge.cli import main

GRID = {"datasets": ["digits"], "models": ["mini_resnet"], "arms": ["real"], "generator": "render", "seeds": [0]}


@pytest.mark.parametrize("command", [
    ["generate", "--dataset", "digits", "--generator", "render", "--per-class", "1"],
    ["render", "--dataset", "digits", "--per-class", "1"],
    ["train", "--dataset", "digits", "--model", "mini_resnet"],
    ["run", "GRID"],
    ["run", "GRID", "--plan"],
])
def test_out_naming_a_file_is_one_line_in_words(command, tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump(GRID))
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    command = [str(grid) if part == "GRID" else part for part in command]
    assert main([*command, "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "names a file, not a folder" in err and "Traceback" not in err, err
    assert mine.read_text() == "mine"

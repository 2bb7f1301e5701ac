"""Bad input through the command line: one line on stderr, exit code 2, no traceback."""

import pytest

from helpers import write_synthetic_folder
from synthbridge.cli import main


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse errors exit directly
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "mnist6k"], "unknown dataset 'mnist6k'"),
    (["--model", "resnet_tiny_nope"], "unknown model 'resnet_tiny_nope'"),
    (["--strategy", "bridge"], "unknown strategy 'bridge'"),
    (["--shots", "0"], "--shots: must be a whole number > 0"),
    (["--shots", "two"], "--shots: must be a whole number > 0"),
    (["--real-lr", "-1"], "--real-lr: must be a finite number > 0"),
    (["--real-fraction", "1"], "between 0 and 1"),
    (["--strategy", "bridged"], "needs --synthetic"),
    (["--strategy", "bridged", "--synthetic", "/nonexistent/folder"], "does not exist"),
    (["--checkpoint", "/nonexistent.safetensors", "--shots", "1"], "does not exist"),
    (["--dataset", "imagefolder:/nonexistent"], "not a folder"),
])
def test_bad_train_input_is_one_line_exit_2(capsys, tmp_path, argv, message):
    code, err = run_cli(capsys, "train", "--out", str(tmp_path / "run"), "--no-pretrained", *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_synthetic_classes_that_do_not_match(capsys, tmp_path):
    folder = write_synthetic_folder(tmp_path / "s", ["a", "b"], per_class=1)
    code, err = run_cli(capsys, "train", "--out", str(tmp_path / "run"), "--no-pretrained", "--strategy", "bridged",
                        "--dataset", "digits", "--synthetic", str(folder))
    assert code == 2 and "which the dataset lacks" in err and len(err.strip().splitlines()) == 1


def test_mismatched_checkpoint_is_an_error(capsys, tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"something.weight": torch.zeros(3)}, str(tmp_path / "bad.safetensors"))
    code, err = run_cli(capsys, "train", "--out", str(tmp_path / "run"), "--dataset", "digits",
                        "--checkpoint", str(tmp_path / "bad.safetensors"))
    assert code == 2 and "does not fit model 'mini_resnet'" in err


def test_pickled_checkpoint_is_never_unpickled(capsys, tmp_path):
    import torch

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    code, err = run_cli(capsys, "train", "--out", str(tmp_path / "run"), "--dataset", "digits",
                        "--checkpoint", str(tmp_path / "evil.pth"))
    assert code == 2 and not (tmp_path / "pwned").exists()


def test_unknown_command_and_help(capsys):
    code, err = run_cli(capsys, "trian")
    assert code == 2 and "invalid choice" in err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    assert "--strategy" in capsys.readouterr().out


def test_every_command_ends_its_help_with_an_example_that_parses_as_written(capsys):
    """Each command's --help shows one example, and the example is a valid command line of that command."""
    import shlex

    from synthbridge import __version__
    from synthbridge.cli import build_parser
    from synthbridge.cli.main import COMMANDS, EMBEDDED_COMMANDS, EXAMPLES

    parser = build_parser()
    assert set(EXAMPLES) == set(COMMANDS) | set(EMBEDDED_COMMANDS)
    for name, example in EXAMPLES.items():
        words = shlex.split(example)
        assert words[:2] == ["synthbridge", name]
        assert parser.parse_args(words[1:]).command == name, example
        with pytest.raises(SystemExit):
            parser.parse_args([name, "--help"])
        assert f"example: {example}" in " ".join(capsys.readouterr().out.split()), name
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"synthbridge {__version__}"

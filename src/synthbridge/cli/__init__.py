"""The `synthbridge` command: one subcommand per stage of the study, listed in `main.COMMANDS`.

Each command module (`train.py`, `generate.py`, `invert.py`, `lora.py`, `gap.py`, `experiments.py`, `advise.py`,
`info.py`, and `embedded.py` for the embedded world) defines `name(parser) -> handler`: it adds its arguments, and the
handler builds the stage's typed config (`args.config_from_args`) and calls one function of the stage.
Bad input raises UserError, printed by `main` as one line with exit code 2 (no traceback). No library
module imports this package.
"""

from synthbridge.cli.main import COMMANDS, EMBEDDED_COMMANDS, build_parser, main

__all__ = ["COMMANDS", "EMBEDDED_COMMANDS", "build_parser", "main"]

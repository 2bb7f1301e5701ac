"""The one exception type for bad user input.

Anything a user can get wrong (a name, a path, a number) raises `UserError` with one line that
names the problem and the fix. The CLI prints it without a traceback and exits with code 2.
"""

import dataclasses


class UserError(Exception):
    """Bad input from the user: shown as one line, exit code 2."""


def require(condition: bool, message: str) -> None:
    """Raise `UserError(message)` unless `condition` holds."""
    if not condition:
        raise UserError(message)


def positive_int(value, name: str) -> int:
    """Parse `value` as a whole number > 0 or raise a one-line UserError naming `name`."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise UserError(f"{name} must be a whole number > 0, got {value!r}") from None
    if number <= 0:
        raise UserError(f"{name} must be a whole number > 0, got {value!r}")
    return number


def reject_unknown_keys(data, config_class, what: str) -> None:
    """One-line UserError naming the keys of `data` that dataclass `config_class` has no field for, and the valid ones."""
    valid = {f.name for f in dataclasses.fields(config_class)}
    if unknown := sorted(set(data) - valid):
        raise UserError(f"unknown {what} keys {', '.join(unknown)}; valid keys: {', '.join(sorted(valid))}")

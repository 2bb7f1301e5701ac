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


def check_types(config_class, data: dict, what: str, prefix: str = "") -> None:
    """Each key of `data` checked against the type dataclass `config_class` declares for it, with pydantic's
    TypeAdapter in strict mode (YAML's lists stand for tuples; "64" is not a whole number, nor "0,1" a list), a
    nested config's mapping key by key: the first misfit is one UserError line naming the key, the value and what
    is expected. Unknown keys of a nested config are errors too (its top level: `reject_unknown_keys`)."""
    import typing

    from pydantic import TypeAdapter, ValidationError

    hints = typing.get_type_hints(config_class)
    for key, value in data.items():
        if key not in hints:
            continue
        hint, where = hints[key], f"{prefix}{key}"
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            reject_unknown_keys(value, hint, f"{what} {where!r}")
            check_types(hint, value, what, f"{where}.")
            continue
        try:
            TypeAdapter(hint).validate_python(_as_tuples(value), strict=True)
        except ValidationError:
            raise UserError(f"{what}: {where} = {value!r} does not fit; expected {_describe(hint)}") from None


def _as_tuples(value):
    """YAML's lists as tuples (what the configs declare), all the way down."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_tuples(v) for k, v in value.items()}
    return value


_WORDS = {int: ("a whole number", "whole numbers"), float: ("a number", "numbers"), str: ("a text", "texts"),
          bool: ("true or false", "true or false"), dict: ("a mapping", "mappings")}


def _describe(hint, plural: bool = False) -> str:
    """A declared type in words: tuple[int, ...] -> 'a list of whole numbers'."""
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return f"a list of {_describe(args[0], plural=True)}" if args else "a list"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a, plural) for a in args)
    if dataclasses.is_dataclass(hint):
        return f"a mapping of {hint.__name__} fields"
    return _WORDS[hint][plural] if hint in _WORDS else getattr(hint, "__name__", str(hint))


def reject_unknown_keys(data, config_class, what: str) -> None:
    """One-line UserError naming the keys of `data` that dataclass `config_class` has no field for, and the valid ones."""
    valid = {f.name for f in dataclasses.fields(config_class)}
    if unknown := sorted(set(data) - valid):
        raise UserError(f"unknown {what} keys {', '.join(unknown)}; valid keys: {', '.join(sorted(valid))}")

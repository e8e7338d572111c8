"""argparse options built from the configuration models: one flag per field, with the field's type,
choices, default and description, so that `v2a --help` and the config file can never disagree."""

from __future__ import annotations

import argparse
import types
import typing
import warnings

from pydantic import BaseModel

from v2a.config import ConfigDeprecationWarning, Section


def _unwrap(annotation):
    """(python type, choices or None, is a list) of a field's annotation."""
    many = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        origin = typing.get_origin(annotation)
    if origin is list:
        many, annotation = True, typing.get_args(annotation)[0]
        origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
        origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        return type(choices[0]), list(choices), many
    return annotation, None, many


class _RenamedOption(argparse.Action):
    """A field's flag that also answers to the field's old name (hidden from help): the old name warns, and
    the two names together are refused, as the two keys are in a config file."""

    def __init__(self, option_strings, dest, flag: str, old_flag: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.flag, self.old_flag = flag, old_flag

    def __call__(self, parser, namespace, values, option_string=None):
        seen = f"_{self.dest}_given_as"
        if getattr(namespace, seen, option_string) != option_string:
            parser.error(f"{self.old_flag} is the old name of {self.flag}: give only {self.flag}")
        setattr(namespace, seen, option_string)
        if option_string == self.old_flag:
            warnings.warn(f"{self.old_flag} is deprecated: use {self.flag}", ConfigDeprecationWarning, stacklevel=2)
        setattr(namespace, self.dest, values)


def add_model_options(parser: argparse.ArgumentParser, model: type[BaseModel], only=None, skip=(),
                      rename: dict | None = None, defaults: dict | None = None, helps: dict | None = None) -> list[str]:
    """Add `--field-name` for each (chosen) field of `model`; returns the field names added.

    rename: field → flag name (without dashes); defaults / helps: values that differ on the command line
    (say why in the help). A field renamed in the model (its `_old_names`) keeps its old flag, hidden."""
    added = []
    old_names = model.old_name_of() if issubclass(model, Section) else {}
    for name, field in model.model_fields.items():
        if (only is not None and name not in only) or name in skip:
            continue
        kind, choices, many = _unwrap(field.annotation)
        if kind is bool and not many:
            flag = "--" + (rename or {}).get(name, name).replace("_", "-")
            default = (defaults or {}).get(name, field.get_default(call_default_factory=True))
            # Unset stays None, so a config file's value is not overridden by the flag's absence.
            parser.add_argument(flag, dest=name, default=None, help=(helps or {}).get(name, field.description or ""),
                                action="store_true" if default is False else argparse.BooleanOptionalAction)
            added.append(name)
            continue
        if kind not in (int, float, str):
            continue  # mappings (train.options, runner kwargs) are for config files
        flag = "--" + (rename or {}).get(name, name).replace("_", "-")
        default = (defaults or {}).get(name, field.get_default(call_default_factory=True))
        help_text = (helps or {}).get(name, field.description or "")
        kwargs = {"type": kind, "default": default, "dest": name,
                  "help": help_text + (" (default: %(default)s)" if default is not None else "")}
        if choices:
            kwargs["choices"] = choices
        if many:
            kwargs["nargs"] = "+"
        if field.is_required() and name not in (defaults or {}):
            kwargs["required"] = True
            kwargs.pop("default")
        if name in old_names:
            old_flag = "--" + old_names[name].replace("_", "-")
            kwargs.update(action=_RenamedOption, flag=flag, old_flag=old_flag)
            parser.add_argument(old_flag, **{**kwargs, "help": argparse.SUPPRESS, "default": argparse.SUPPRESS,
                                                 "required": False})
        parser.add_argument(flag, **kwargs)
        added.append(name)
    return added


def model_from_args(args: argparse.Namespace, model: type[BaseModel], names=None, **extra):
    """The model built from the parsed options (validated: a bad value is a one-line ConfigError)."""
    names = names if names is not None else [n for n in model.model_fields if hasattr(args, n)]
    values = {n: getattr(args, n) for n in names if hasattr(args, n) and getattr(args, n) is not None}
    return model(**{**values, **extra})

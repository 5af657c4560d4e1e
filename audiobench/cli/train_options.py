"""The click options of ``train`` and ``compare``, generated from the fields of the training options.

Each option's type, default, bounds and help text are those of its field in
:mod:`audiobench.training.options`, so a new training option is one field there: both commands (and
pipelines) take it, spelt ``--the-name``.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import MISSING
from typing import Any

import click

from audiobench.cli.options import NameChoice
from audiobench.models.variants import variant_names
from audiobench.training.options import TrainConfig, TrainOptions, option_fields

F = Callable[..., Any]


def _click_type(name: str, hint: Any, meta: typing.Mapping[str, Any]) -> Any:
    """The click type of a field: its base type under its bounds (``int | None`` is an ``int`` left out)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if name == "variant":
        return NameChoice(variant_names(), what="variant")
    if meta.get("choices"):
        return click.Choice(meta["choices"])
    low, high = meta.get("minimum"), meta.get("maximum")
    if hint is int:
        return click.IntRange(min=low, max=high) if low is not None or high is not None else int
    if hint is float:
        if meta.get("positive"):
            return click.FloatRange(min=0, min_open=True)
        return click.FloatRange(min=low, max=high) if low is not None or high is not None else float
    return hint


def click_option(f: Any, hint: Any) -> Callable[[F], F]:
    """One field as a click option: a flag for a bool, required without a default, default shown if any."""
    meta = f.metadata
    flag = f"--{f.name.replace('_', '-')}"
    if hint is bool:
        return click.option(flag, is_flag=True, default=f.default, help=meta["help"])
    if f.default is MISSING:
        return click.option(flag, type=_click_type(f.name, hint, meta), required=True, help=meta["help"],
                            metavar=meta["metavar"])
    return click.option(flag, type=_click_type(f.name, hint, meta), default=f.default,
                        show_default=f.default is not None, help=meta["help"], metavar=meta["metavar"])


def _options_of(cls: type) -> Callable[[F], F]:
    def add(func: F) -> F:
        for f, hint in reversed(option_fields(cls)):
            func = click_option(f, hint)(func)
        return func
    return add


# ``train``: the variant, the seed and every shared option; ``compare``: the shared options (variants and
# seeds are the study's).
run_options = _options_of(TrainConfig)
training_options = _options_of(TrainOptions)

"""The ``audiobench`` command: one click group, one small module per command.

Commands only parse options, call the stage function of the same name, and print a summary. An
``AudiobenchError`` becomes one line on stderr and its ``exit_code`` (2; 3 when a source cannot be reached);
other exceptions are bugs and keep their traceback.
"""
from __future__ import annotations

import importlib
import logging
import sys

import click

from audiobench import __version__
from audiobench.core.errors import AudiobenchError

# Each module in audiobench/cli/ defines `command`; `--help` lists them in this order, the data flow's.
_COMMANDS = ("synth", "fetch", "import_copies", "resample", "featurize", "weights", "train", "compare", "report",
             "evaluate", "predict", "run", "status", "model_info")


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # the data flow's order (as added), not alphabetical

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AudiobenchError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="audiobench")
def cli() -> None:
    """Reproducible weakly labelled audio event classification.

    \b
    audiobench synth                          # a synthetic SL-DCASE-17-like dataset, no network needed
    audiobench fetch sl-dcase17               # or rebuild a published one from YouTube (yt-dlp)
    audiobench import sl-dcase17 ~/dcase2017  # or from copies you already have
    audiobench featurize synth --jobs 2       # VGGish log-mel features into HDF5
    audiobench compare synth --trials 20 --variants noatt-weak,att-self   # paired trials + Wilcoxon
    audiobench run pipelines/synth-demo.toml  # every stage of a study, from one file
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


for _name in _COMMANDS:
    cli.add_command(importlib.import_module(f"audiobench.cli.{_name}").command)


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="audiobench"))

"""Options shared by several commands, defined once so that every command spells them the same way."""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from audiobench.core.layout import ROOT_ENV
from audiobench.core.parallel import BACKENDS

F = Callable[..., Any]

root_option = click.option(
    "--root", type=click.Path(file_okay=False), default=None, envvar=ROOT_ENV, show_envvar=True,
    help="Storage root holding every dataset and run [default: ./audiobench-data].",
)


def quiet_option_for(help: str) -> Callable[[F], F]:
    """``--quiet``/``-q`` spelt as everywhere, with what it hides in this command (``help``)."""
    return click.option("--quiet", "-q", is_flag=True, help=help)


quiet_option = quiet_option_for("No progress bars.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON for machines.")
wait_option = click.option(
    "--wait", is_flag=True,
    help="If another process writes this dataset, wait for it to finish (one line says for whom) instead of "
         "stopping at once.")
jobs_option = click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
                           help="Parallel workers.")


class NameChoice(click.Choice):
    """A choice among names (variants): a wrong one gets the closest name and the others
    (:func:`audiobench.core.names.unknown_name`), as a wrong dataset or run name does."""

    def __init__(self, choices: Any, *, what: str) -> None:
        super().__init__(tuple(choices))
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in self.choices:
            return value
        from audiobench.core.names import unknown_name

        self.fail(str(unknown_name(self.what, str(value), self.choices)), param, ctx)


def run_folder(run: str, root: str | None) -> Path:
    """A run or study folder: ``run`` as given when it exists or is a path; else a name under ``<root>/runs/``.

    A name that is not there gets the closest run or study name and the others.
    """
    from audiobench.core.errors import AudiobenchError
    from audiobench.core.layout import resolve_root, runs_dir, validate_name
    from audiobench.core.names import unknown_name

    path = Path(run)
    if path.is_dir():
        return path
    if len(path.parts) != 1 or "/" in run:
        raise AudiobenchError(f"no run or study folder {path}")
    runs = runs_dir(resolve_root(root))
    folder = runs / validate_name(run, what="run name")
    if not folder.is_dir():
        known = sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
        raise unknown_name("run or study", run, known, under=runs,
                           then="train one with `audiobench train` or run a study with `audiobench compare`")
    return folder


def backend_options(func: F) -> F:
    """``--backend`` and ``--scheduler``: where parallel tasks run."""
    func = click.option("--scheduler", default=None, metavar="ADDR",
                        help="Dask scheduler address (tcp://HOST:PORT) for --backend dask; "
                             "without it a local Dask cluster is started.")(func)
    func = click.option("--backend", type=click.Choice(BACKENDS), default="loky", show_default=True,
                        help="joblib backend: local processes, threads, or a Dask cluster.")(func)
    return func


def stops_workers_on_signals(func: F) -> F:
    """SIGTERM or SIGINT: the stage cleans up, its worker processes are stopped, exit 143 or 130.

    For the commands that start worker processes; without it a killed command leaves them running.
    """
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from audiobench.core.interrupt import Interrupted, interrupt_on_signals
        from audiobench.core.parallel import stop_workers

        try:
            with interrupt_on_signals():
                return func(*args, **kwargs)
        except Interrupted as exc:
            stop_workers()
            click.echo(f"interrupted ({exc.name}): finished work is kept; rerun the same command to go on",
                       err=True)
            click.get_current_context().exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]

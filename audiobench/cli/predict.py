"""``audiobench predict RUN FILE...``: the top classes of a trained run for each audio file."""
from __future__ import annotations

import json
from pathlib import Path

import click

from audiobench.cli.options import json_option, quiet_option, root_option, run_folder, stops_workers_on_signals


@click.command("predict")
@stops_workers_on_signals
@click.argument("run")
@click.argument("files", nargs=-1, required=True)
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Classes printed per file.")
@click.option("--matrices", is_flag=True,
              help="With --json: the segment probabilities and attention matrices themselves, not their shapes.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda|auto")
@root_option
@quiet_option
@json_option
def command(run: str, files: tuple[str, ...], top: int, matrices: bool, device: str, root: str | None,
            quiet: bool, as_json: bool) -> None:
    """Print the classes a trained run finds most probable in each audio FILE (any format, rate, channels).

    RUN is a run folder (holding model.pt and model.json), or the name of one under ROOT/runs/. A file that
    cannot be read gets one line on stderr and the others go on (exit status 2 at the end); audio shorter
    than what one segment of the net depends on (about 1 s) gets a note there. A long file is read and
    scored in blocks, in bounded memory. --json prints every class's probability per file, with the shapes
    of the segment and attention matrices.

    \b
    Examples:
      audiobench predict train-synth-att-self-s0-20250101-120000 street.wav --top 3
      audiobench predict audiobench-data/runs/my-run a.mp3 b.flac --json --matrices
    """
    from audiobench.core.errors import AudiobenchError
    from audiobench.core.progress import progress
    from audiobench.training.predict import Predictor

    if matrices and not as_json:
        raise AudiobenchError("--matrices adds the matrices to the --json output: add --json (the text output "
                              "shows the top classes only)")
    predictor = Predictor(run_folder(run, root), device=device)
    results, failed = [], 0
    for path in progress(files, total=len(files), quiet=quiet or len(files) == 1, unit="file", desc="predict"):
        try:
            prediction = predictor(path)
        except AudiobenchError as exc:
            failed += 1
            message, name = str(exc), str(Path(path))
            click.echo(f"error: {message if message.startswith(name) else f'{name}: {message}'}", err=True)
            continue
        if prediction.note:
            click.echo(f"note: {path}: {prediction.note}", err=True)
        if as_json:
            results.append(prediction.to_dict(matrices=matrices))
            continue
        click.echo(f"{path}  ({prediction.seconds:.2f} s)")
        for name, p in prediction.top(top):
            click.echo(f"  {p:.4f}  {name}")
    if as_json:
        click.echo(json.dumps(results, indent=2))
    if failed:
        click.get_current_context().exit(AudiobenchError.exit_code)

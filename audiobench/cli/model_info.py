"""``audiobench model-info``: the network's layer table and parameter counts."""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from audiobench.cli.options import json_option


@click.command("model-info")
@click.option("--classes", type=click.IntRange(min=1), default=527, show_default=True, help="Output classes C.")
@click.option("--width", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Width multiplier on every channel count.")
@click.option("--frames", type=click.IntRange(min=16), default=998, show_default=True,
              help="Input length for the output shapes (10 s = 998 frames).")
@click.option("--bands", type=click.IntRange(min=16), default=64, show_default=True,
              help="Features per frame (64: VGGish log-mel; 128: kaldi-fbank-128). Parameters do not change.")
@json_option
def command(classes: int, width: float, frames: int, bands: int, as_json: bool) -> None:
    """Print L1–L8 (what, output shape for a FRAMES×BANDS input, parameters) and both totals.

    \b
    Example:
      audiobench model-info --classes 527            # 6,613,775 / 7,153,950 parameters
      audiobench model-info --classes 17 --width 0.25
      audiobench model-info --classes 17 --bands 128
    """
    from audiobench.models.net import layer_table, parameter_totals

    rows = layer_table(classes, width=width, frames=frames, bands=bands)
    totals = parameter_totals(classes, width=width)
    if as_json:
        click.echo(json.dumps({"layers": [asdict(r) for r in rows], "totals": totals}, indent=2))
        return
    what = max(len(r.what) for r in rows)
    click.echo(f"{'layer':<5}  {'what':<{what}}  {f'output ({frames}×{bands} input)':<22}  {'params':>10}")
    for r in rows:
        shape = " × ".join(str(n) for n in r.output)
        click.echo(f"{r.name:<5}  {r.what:<{what}}  {shape:<22}  {r.params:>10,}")
    for name, total in totals.items():
        click.echo(f"total {name}: {total:,}")

"""The training options shared by ``train`` and ``compare``: one definition, the same spelling in both."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

F = Callable[..., Any]

_OPTIONS = [
    click.option("--epochs", type=click.IntRange(min=1), default=50, show_default=True),
    click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True,
                 help="Adam learning rate (the paper: 1e-4 on SL-DCASE-17, 1e-3 on AudioSet)."),
    click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True),
    click.option("--alpha", type=float, default=1.0, show_default=True, help="Weight α of the attention loss."),
    click.option("--beta", type=float, default=1.0, show_default=True,
                 help="Weight β of the self-supervised loss in att-strong-self."),
    click.option("--width", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
                 help="Width multiplier on every channel count (1 = the paper's network)."),
    click.option("--frames", type=click.IntRange(min=16), default=None,
                 help="Training input length in frames [default: the longest training clip]; shorter "
                      "clips are padded with silence, longer ones cropped at random."),
    click.option("--init", default=None, metavar="vggish:PATH|run:PATH",
                 help="Start L1–L6 from VGGish weights, or L1–L7 from an earlier run."),
    click.option("--freeze", type=click.IntRange(min=0, max=7), default=0, show_default=True,
                 help="Keep the first K conv layers (of L1–L7) fixed."),
    click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda"),
    click.option("--bf16", is_flag=True, help="bfloat16 autocast for the network (losses stay float32)."),
    click.option("--patience", type=click.IntRange(min=1), default=None,
                 help="Stop after N epochs without a better validation mAP."),
    click.option("--feature-id", default=None, help="Which feature set under features/ (default: the only one)."),
    click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
                 help="DataLoader worker processes for the training split."),
]


def training_options(func: F) -> F:
    """Add every option of :class:`audiobench.training.train.TrainConfig` but the dataset, variant and seed."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func

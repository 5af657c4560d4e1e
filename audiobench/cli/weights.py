"""``audiobench weights NAME``: download pretrained weights once into ``<root>/weights/``, checked by sha256."""
from __future__ import annotations

import click

from audiobench.cli.options import quiet_option, root_option


@click.command("weights")
@click.argument("name", default="vggish")
@root_option
@click.option("--mirror", metavar="DIR|URL", default=None,
              help="Take the file from this folder or base URL instead of the official host "
                   "(default: $AUDIOBENCH_WEIGHTS_MIRROR).")
@quiet_option
def command(name: str, root: str | None, mirror: str | None, quiet: bool) -> None:
    """Download pretrained weights (vggish: torchvggish's release, ~290 MB) once; print where they are.

    A file already there with the right sha256 is not fetched again; one with another hash is refused.

    \b
    Examples:
      audiobench weights vggish --root audiobench-data
      audiobench train sl-dcase17 --variant att-self --init vggish:audiobench-data/weights/vggish-10086976.pth
    """
    from audiobench.models.weights import fetch_weights

    path = fetch_weights(name, root=root, mirror=mirror, quiet=quiet)
    click.echo(f"{name}: {path} (use --init {name}:{path})")

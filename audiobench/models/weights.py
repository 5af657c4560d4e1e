"""Pretrained weights that runs start from, downloaded once into ``<root>/weights/`` and checked by sha256.

VGGish (``--init vggish:PATH``) comes as torchvggish's release file, a PyTorch state dict of VGGish's
convolutions and embedding MLP ported from the TensorFlow checkpoint. Its name carries the first 8 hex digits
of its sha256 (torch.hub's convention), which the full hash below starts with. The download goes through the
index downloader: streamed to a temporary file, kept only when the hash matches, never fetched twice.

>>> from audiobench.models.weights import fetch_weights
>>> fetch_weights("vggish")                                  # doctest: +SKIP
PosixPath('audiobench-data/weights/vggish-10086976.pth')
"""
from __future__ import annotations

import os
from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.data.index import fetch_index_file, resolve_index_mirror
from audiobench.core.layout import ensure_writable_dir, resolve_root, weights_dir
from audiobench.data.manifests import IndexFile

WEIGHTS_MIRROR_ENV = "AUDIOBENCH_WEIGHTS_MIRROR"

# harritaylor/torchvggish, release v0.1 (the file torchvggish's hubconf loads).
KNOWN: dict[str, IndexFile] = {
    "vggish": IndexFile(
        name="vggish-10086976.pth",
        url="https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth",
        sha256="10086976245803799d9194e9a73d9b6c1549c71d1b80106f5cade5608a561f4b",
    ),
}


def weights_path(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where ``fetch_weights(name)`` puts the file (whether or not it is there yet)."""
    return weights_dir(resolve_root(root)) / _spec(name).name


def fetch_weights(name: str = "vggish", *, root: str | os.PathLike[str] | None = None,
                  mirror: str | os.PathLike[str] | None = None, quiet: bool = False) -> Path:
    """Make the weight file ``name`` present and verified under ``<root>/weights/``; returns its path.

    ``mirror`` (or ``$AUDIOBENCH_WEIGHTS_MIRROR``), a folder or a base URL holding the file under its own
    name, replaces the official host. A file with another sha256 is refused and not kept. A host that does not
    answer is a :class:`~audiobench.core.errors.SourceUnreachable` whose hint names ``--mirror``.
    """
    spec = _spec(name)
    folder = ensure_writable_dir(weights_dir(resolve_root(root)))
    return fetch_index_file(spec, folder, mirror=resolve_index_mirror(mirror, env=WEIGHTS_MIRROR_ENV),
                            show_progress=not quiet, mirror_option="--mirror")


def _spec(name: str) -> IndexFile:
    if name not in KNOWN:
        raise AudiobenchError(f"unknown weights {name!r} (known: {', '.join(KNOWN)})")
    return KNOWN[name]

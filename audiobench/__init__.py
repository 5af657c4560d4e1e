"""audiobench: reproducible weakly labelled audio event classification.

Stages (each a plain function, each with a thin CLI command on top):
synth/fetch -> resample -> featurize -> train / compare -> report.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("audiobench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from audiobench.core.errors import AudiobenchError

__all__ = ["AudiobenchError", "__version__"]

"""Which ffmpeg binary to run: the one ``AUDIOBENCH_FFMPEG`` names, else the one the ``imageio-ffmpeg`` wheel carries.

Its own module, beneath both users: the decoder (:mod:`audiobench.data.decode`) and the yt-dlp source, which
must not load numpy and libsndfile just to know a program's path.
"""
from __future__ import annotations

import os
import shutil
from functools import lru_cache

from audiobench.core.errors import AudiobenchError

FFMPEG_ENV = "AUDIOBENCH_FFMPEG"


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to use; an error naming ``AUDIOBENCH_FFMPEG`` when it names no executable."""
    override = os.environ.get(FFMPEG_ENV)
    if override:
        found = shutil.which(override)
        if found is None:
            raise AudiobenchError(f"{FFMPEG_ENV}={override}: no such executable (unset it to use the bundled ffmpeg)")
        return found
    import imageio_ffmpeg  # deferred: only when no system ffmpeg is named

    return imageio_ffmpeg.get_ffmpeg_exe()

"""What a fetch run checks about its yt-dlp setup before the first download, and what it passes through.

YouTube changes what a client must do to be served (a JavaScript runtime for its player challenges, PO
tokens for some clients, sign-in past a rate), and yt-dlp follows within days: an old yt-dlp or a JavaScript
runtime that does not start makes every download fail alike. These checks name that before any clip is
judged. ``--extractor-args`` is parsed by yt-dlp's own option parser, so its syntax is exactly yt-dlp's.
"""
from __future__ import annotations

import optparse
import subprocess
from collections.abc import Sequence
from datetime import date

from audiobench.core.errors import AudiobenchError

MAX_AGE_DAYS = 90  # yt-dlp releases every few weeks; older than this, YouTube has usually changed since
UPGRADE_COMMAND = "pip install -U 'yt-dlp[default]'"


def ytdlp_version() -> str:
    from yt_dlp.version import __version__  # deferred (here and below): yt-dlp is heavy, `--help` needs none

    return __version__


def version_date(version: str) -> date | None:
    """yt-dlp's versions are release dates (``2025.10.22``, nightlies ``2025.10.22.123456``)."""
    parts = version.split(".")
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except (ValueError, IndexError):
        return None


def age_warning(version: str, today: date | None = None) -> str | None:
    """One line when yt-dlp is older than :data:`MAX_AGE_DAYS` (``None`` when recent or not a date)."""
    released = version_date(version)
    if released is None:
        return None
    age = ((today or date.today()) - released).days
    if age <= MAX_AGE_DAYS:
        return None
    return (f"warning: yt-dlp {version} is {age} days old; YouTube changes often and an old yt-dlp fails "
            f"every download alike: {UPGRADE_COMMAND}")


def check_javascript_runtime(deno: str, *, timeout: float = 20.0) -> str:
    """Run ``deno --version``; its first line, or a one-line error saying the runtime does not run."""
    hint = "reinstall it: pip install --force-reinstall deno"
    try:
        done = subprocess.run([deno, "--version"], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise AudiobenchError(f"the JavaScript runtime {deno} did not answer `--version` within {timeout:g} s; "
                              f"{hint}") from None
    except OSError as exc:
        raise AudiobenchError(f"the JavaScript runtime {deno} does not run ({exc.strerror or exc}); {hint}") from None
    if done.returncode != 0:
        said = " ".join((done.stderr or done.stdout).split())[:200]
        raise AudiobenchError(f"the JavaScript runtime {deno} failed `--version` (exit status {done.returncode}"
                              f"{': ' + said if said else ''}); {hint}")
    return (done.stdout.strip().splitlines() or ["deno"])[0]


def parse_extractor_args(values: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """``--extractor-args`` values (``youtube:player_client=default,web_safari``), parsed by yt-dlp itself.

    >>> parse_extractor_args(["youtube:player_client=default,web_safari"])
    {'youtube': {'player_client': ['default', 'web_safari']}}
    """
    if not values:
        return {}
    from yt_dlp import parse_options

    argv = [part for value in values for part in ("--extractor-args", value)]
    try:
        parsed = parse_options(argv)  # given argv, yt-dlp reads no configuration file
    except optparse.OptParseError as exc:
        said = str(exc).strip().splitlines()[-1].split("error: ", 1)[-1]
        raise AudiobenchError(f"--extractor-args: {said}") from None
    return parsed.ydl_opts["extractor_args"]


def plugin_names() -> list[str]:
    """The yt-dlp plugins this process loaded (extractors, post-processors, PO-token providers), by name.

    yt-dlp loads plugins from the ``yt_dlp_plugins`` package (an installed plugin such as
    ``bgutil-ytdlp-pot-provider``, or a plugin folder) the first time a downloader is made; so does this.
    """
    from yt_dlp.globals import all_plugins_loaded, plugin_ies, plugin_pps
    from yt_dlp.plugins import load_all_plugins

    if not all_plugins_loaded.value:
        load_all_plugins()
    names = set(plugin_ies.value) | set(plugin_pps.value)
    try:  # PO-token providers register themselves here (yt-dlp 2025.05 and later)
        from yt_dlp.extractor.youtube.pot._registry import _pot_providers
    except ImportError:
        return sorted(names)
    names |= {name for name, cls in _pot_providers.value.items() if not cls.__module__.startswith("yt_dlp.")}
    return sorted(names)

"""``audiobench fetch DATASET``: rebuild a dataset from its published lists."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from audiobench.cli.options import json_option, quiet_option, root_option, stops_workers_on_signals, wait_option
from audiobench.data.sources.youtube import YOUTUBE_TEMPLATE, DownloadSettings


@click.command("fetch")
@stops_workers_on_signals
@click.argument("dataset")
@root_option
@click.option("--index-mirror", envvar="AUDIOBENCH_INDEX_MIRROR", show_envvar=True, metavar="DIR|URL",
              help="Take the list files from this folder or base URL instead of their official hosts.")
@click.option("--source-template", default=YOUTUBE_TEMPLATE, show_default=True,
              help="http(s) URL of a recording, with {ytid} where the ID goes.")
@click.option("--split", default=None, help="Fetch only this split.")
@click.option("--shard", default=None, metavar="I/N", help="Take only shard I of N (to split over machines).")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="At most this many clips (a quick try).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=4, show_default=True,
              help="Parallel download threads.")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Further tries of a transient failure in this run.")
@click.option("--backoff", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds before the first retry; doubles each time, with jitter.")
@click.option("--sleep", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds each worker waits before each download (jittered up to twice that).")
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), default=None,
              help="At most this many downloads started per second, all workers together.")
@click.option("--max-refusals", type=click.IntRange(min=1), default=5, show_default=True,
              help="Stop after this many refusals in a row (HTTP 429, bot checks).")
@click.option("--max-network-errors", type=click.IntRange(min=1), default=5, show_default=True,
              help="Stop after this many downloads in a row that could not connect (the clips stay as they were).")
@click.option("--max-per-hour", type=click.IntRange(min=1), default=None, metavar="N",
              help="At most N downloads started per rolling hour, over all workers and runs of this dataset; "
                   "spread with random pauses. When spent, the run stops (exit 3) and says when to rerun.")
@click.option("--probe", default=None, metavar="ID",
              help="The recording to probe before trusting failures (default: a clip already fetched, else one "
                   "from the dataset's lists).")
@click.option("--extractor-args", "extractor_args", multiple=True, metavar="IE_KEY:ARGS",
              help="Passed to yt-dlp in its own syntax, e.g. youtube:player_client=default,web_safari "
                   "(repeatable).")
@click.option("--retry-unavailable", is_flag=True, help="Try clips marked unavailable again.")
@click.option("--cookies", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Netscape cookies file (each worker uses its own copy).")
@click.option("--proxy", default=None, help="Proxy URL passed to yt-dlp.")
@click.option("--socket-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds without data before a download counts as failed.")
@click.option("--ffmpeg", default=None, help="Use this ffmpeg instead of the bundled one.")
@wait_option
@quiet_option
@json_option
def command(dataset: str, root: str | None, index_mirror: str | None, source_template: str, split: str | None,
            shard: str | None, limit: int | None, jobs: int, retries: int, backoff: float, sleep: float,
            rate_limit: float | None, max_refusals: int, max_network_errors: int, max_per_hour: int | None,
            probe: str | None, extractor_args: tuple[str, ...], retry_unavailable: bool,
            cookies: Path | None, proxy: str | None, socket_timeout: float, ffmpeg: str | None, wait: bool,
            quiet: bool, as_json: bool) -> None:
    """Download the list files (checked by sha256) and every listed segment; print what was had.

    Before the first download (and whenever unavailable clips pile up) a probe clip known to exist is
    fetched; if it fails too, the setup is broken, not the videos: the run stops and the clips marked
    unavailable since the last good probe are pending again.

    One writer per dataset: while another process fetches, imports, resamples or featurizes it, the run
    stops at once naming that process (exit 2), or with --wait waits for it.

    Exit status: 0 when the run went through and the fetched splits hold clips; 2 on a usage or input
    error, when another process writes the dataset, or when no clip of them is fetched; 3 when a host does
    not answer (checked before anything is downloaded), the source refused or could not be reached for
    --max-refusals / --max-network-errors downloads in a row, the probe failed, or --max-per-hour is spent,
    and the run stopped early. Clips the network failed stay as they were.

    \b
    Examples:
      audiobench fetch sl-dcase17 --jobs 8 --cookies cookies.txt
      audiobench fetch audioset-balanced --split test --limit 20
      audiobench fetch sl-dcase17 --shard 0/4     # machine 1 of 4
      audiobench fetch sl-dcase17 --max-per-hour 250 --extractor-args youtube:player_client=default,web_safari
    """
    from audiobench.data.coverage import coverage_table
    from audiobench.data.fetch import FetchOptions, fetch, parse_shard
    from audiobench.data.sources.ytdlp_setup import age_warning, parse_extractor_args, ytdlp_version

    options = FetchOptions(
        source_template=source_template, jobs=jobs, retries=retries, backoff=backoff, rate_limit=rate_limit,
        max_refusals=max_refusals, max_network_errors=max_network_errors, retry_unavailable=retry_unavailable,
        split=split, shard=parse_shard(shard), limit=limit, probe=probe, max_per_hour=max_per_hour, wait=wait,
        download=DownloadSettings(socket_timeout=socket_timeout, proxy=proxy, cookies=cookies, sleep=sleep,
                                  ffmpeg=ffmpeg, extractor_args=parse_extractor_args(extractor_args)),
    )
    warning = age_warning(ytdlp_version())
    if warning:  # at start: a long run on an old yt-dlp is the likeliest to fail late
        click.echo(warning, err=True)
    result = fetch(dataset, root=root, index_mirror=index_mirror, options=options, quiet=quiet)
    if as_json:
        click.echo(json.dumps({"attempted": result.summary.attempted, "counts": result.summary.counts,
                               "stopped_early": result.summary.stopped_early, "message": result.summary.message,
                               "setup": result.summary.notes,
                               "coverage": [asdict(r) for r in result.coverage]}, indent=2))
        click.get_current_context().exit(result.summary.exit_code)
    for failure in result.summary.failures[:20]:
        click.echo(f"{failure.status:11s} {failure.clip_id}: {failure.reason}")
    if len(result.summary.failures) > 20:
        click.echo(f"... and {len(result.summary.failures) - 20} more (audiobench status {dataset})")
    click.echo(coverage_table(result.coverage))
    counts = result.summary.counts
    click.echo(f"tried {result.summary.attempted}: {counts['ok']} ok, {counts['unavailable']} unavailable, "
               f"{counts['failed']} failed, {counts['pending']} left pending")
    for note in result.summary.notes:
        if not note.startswith("warning:"):  # printed at start
            click.echo(note)
    if result.summary.message:
        click.echo(result.summary.message, err=True)
    click.get_current_context().exit(result.summary.exit_code)

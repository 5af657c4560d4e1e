"""The command line as a whole: quick to start, commands listed in the data flow's order."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from audiobench.cli import cli


def test_starting_the_command_line_imports_no_torch_librosa_or_matplotlib():
    """`audiobench --help` or a typo answers in well under a second: stages are imported when they run."""
    code = ("import sys, audiobench.cli; heavy = [m for m in ('torch', 'librosa', 'matplotlib', 'yt_dlp', 'pandas', "
            "'h5py') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_lists_commands_in_the_data_flow_order():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed[:8] == ["synth", "fetch", "import", "resample", "featurize", "weights", "train", "compare"]


# model-info reads and writes nothing under a root and prints only its table: it takes neither option.
NO_ROOT = {"model-info"}
REPO = Path(__file__).resolve().parents[1]
# What only the project's own history could explain: a design document, a sibling folder, issue numbers.
HISTORY = re.compile(r"DESIGN|\bshared/|\b[Ii]ssues? #?\d|\b[Tt]his session")


def _help(name: str) -> str:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_that_uses_the_storage_root_takes_root_and_quiet():
    names = list(cli.commands)
    assert len(names) >= 11
    for name in names:
        text = _help(name)
        assert ("--root" in text) == (name not in NO_ROOT), name
        assert ("--quiet" in text) == (name not in NO_ROOT), name


def test_docs_readme_and_help_texts_stand_on_their_own():
    texts = {str(p.relative_to(REPO)): p.read_text() for p in [REPO / "README.md", *(REPO / "docs").glob("*.md")]}
    assert len(texts) >= 9
    texts |= {f"audiobench {name} --help": _help(name) for name in cli.commands}
    texts["audiobench --help"] = CliRunner().invoke(cli, ["--help"]).output
    found = {where: HISTORY.findall(text) for where, text in texts.items() if HISTORY.search(text)}
    assert found == {}


def test_sigint_and_sigterm_become_an_exception_with_the_shells_exit_code_and_handlers_come_back():
    import os
    import signal
    import time

    import pytest

    from audiobench.core.interrupt import Interrupted, interrupt_on_signals

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        with pytest.raises(Interrupted) as caught, interrupt_on_signals():
            os.kill(os.getpid(), signum)  # a real signal to this process
            time.sleep(5)  # (the handler runs at once; never reached)
        assert caught.value.exit_code == code and isinstance(caught.value, KeyboardInterrupt)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before

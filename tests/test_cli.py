"""The command line as a whole: quick to start, commands listed in the data flow's order."""
from __future__ import annotations

import subprocess
import sys

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
    assert listed[:7] == ["synth", "fetch", "resample", "featurize", "weights", "train", "compare"]

"""Worker processes never outlive the process that started them, idle or busy."""
from __future__ import annotations

import subprocess
import sys

import pytest

from audiobench.core.errors import AudiobenchError
from audiobench.core.parallel import map_unordered
from procs import alive, descendants, wait_until_gone

# A stage that has finished its parallel part and goes on with something long in the main process
# (featurize writing its files, compare drawing its report): its loky workers sit idle meanwhile.
STAGE = """
import time

from audiobench.core.parallel import map_unordered
list(map_unordered(time.sleep, [0.2] * 4, jobs=2, quiet=True))
print("mapped", flush=True)
time.sleep(300)
"""


@pytest.mark.slow
def test_idle_workers_of_a_killed_process_exit_within_seconds():
    proc = subprocess.Popen([sys.executable, "-c", STAGE], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "mapped"
        workers = {pid: cmd for pid, cmd in descendants(proc.pid).items() if "--process-name" in cmd}
        assert len(workers) == 2
        proc.kill()  # kill -9: the workers are left to notice on their own
        proc.wait()
        assert wait_until_gone(workers, 5) == [], alive(workers)
    finally:
        proc.kill()


def test_one_job_runs_in_this_process_and_an_unknown_backend_is_refused_there_too():
    assert sorted(map_unordered(abs, [-2, 1], jobs=1, quiet=True)) == [1, 2]
    with pytest.raises(AudiobenchError, match="unknown backend 'locky'"):
        list(map_unordered(abs, [-2, 1], jobs=1, backend="locky", quiet=True))

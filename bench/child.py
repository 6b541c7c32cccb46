"""A management command in a child process, timed: what a benchmark measures of a CLI command.

`bench/run.py` has put DATABASE_URL in the environment, so the child uses the benchmark's database.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str) -> tuple[dict, dict]:
    """Run `manage.py ARGS` (which prints JSON) to the end; its JSON and {wall_s, cpu_s, peak_rss_mb}.

    `peak_rss_mb` is the children's ru_maxrss: the largest child of this process so far, not this one alone.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing = {
        "wall_s": round(wall, 2),
        "cpu_s": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 2),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
    }
    return json.loads(done.stdout), timing

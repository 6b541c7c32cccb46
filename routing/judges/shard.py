"""`python -m routing.judges.shard JOB SHARD SHARDS`: one process's share of a judge run (see shards.py).

Prints one JSON line: what it judged, failed and spent.
"""

import json
import sys

import django


def main(argv: list[str]) -> None:
    django.setup()
    from jobs.shutdown import stop_on_sigterm
    from routing.judges.shards import shard_main

    stop_on_sigterm()  # the run's process forwards the worker's warm shutdown as SIGTERM

    job_id, shard, shards = (int(a) for a in argv)
    print(json.dumps(shard_main(job_id=job_id, shard=shard, shards=shards)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""bench/compare_labelstudio.py's pure parts: the workload, duplicate counting, and the Markdown table.

The comparison itself installs and starts Label Studio: it is run by hand, not here.
"""

import argparse

from bench import compare_labelstudio as compare
from bench import run as bench_run


def phase(**figures) -> dict:
    return {"loadavg_start": [1.5, 1, 1], "loadavg_end": [2.25, 1, 1], **figures}


def result(*, tasks_per_s: float, next_p50: float, postgres_cpu: float | None = None) -> dict:
    cpu = {"web": 1.0, "worker": 0.2} | ({"postgres": postgres_cpu} if postgres_cpu is not None else {})
    latency = {"n": 100, "p50": next_p50, "p95": next_p50 * 2, "p99": next_p50 * 3, "mean": next_p50}
    return {
        "import": phase(tasks=10_000, seconds=10_000 / tasks_per_s, tasks_per_s=tasks_per_s, peak_rss_mb=700.0,
                        peak_rss_mb_by_role={"web": 500.0, "worker": 200.0}, peak_pss_mb=420.0),
        "one_annotator": phase(labels=100, labels_per_s=50.0, next_ms=latency, submit_ms=latency, errors=1,
                               requests=201, server_cpu_s=cpu, server_cpu_ms_per_cycle=sum(cpu.values()) * 10),
        "eight_annotators": phase(labels_per_s=61.0, errors=2, requests=900, handed_out=450,
                                  duplicates_handed_out=3),
        "export": phase(labels=550, seconds=1.25, tasks_labelled_twice=2),
    }  # fmt: skip


def test_the_table_has_a_row_per_workload_and_a_column_per_target_in_a_fixed_order():
    measurements = {
        "tandem-postgres": result(tasks_per_s=9400, next_p50=11.8, postgres_cpu=0.51),
        "labelstudio": result(tasks_per_s=3480, next_p50=116.0),
    }
    parameters = {"tasks": 10_000, "big_import": 0, "phase_seconds": 30.0}
    machine = {"cpu_model": "AMD EPYC", "cpu_usable": 2, "cpu_count": 2, "memory_total": "24 GB",
               "python": "CPython 3.11.7", "git": {"commit": "0123456789abcdef", "dirty": True}}  # fmt: skip

    text = compare.markdown_table(measurements, parameters, machine)
    lines = text.splitlines()

    assert "| workload | Label Studio | Tandem PostgreSQL |" in lines  # TARGETS order, not the dict's
    table = [line for line in lines if line.startswith("| ") and " | " in line]
    by_title = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in table}
    assert by_title["import 10,000 tasks in one request, until visible"] == [
        "3,480 tasks/s (2.9 s)",
        "9,400 tasks/s (1.1 s) |",
    ]
    assert by_title["next p50 / p95 / p99, 1 annotator (client)"] == [
        "116.0 / 232.0 / 348.0 ms",
        "11.8 / 23.6 / 35.4 ms |",
    ]
    cpu = by_title["server CPU per next+submit cycle, 1 annotator"]
    assert cpu[0] == "12.0 ms" and cpu[1] == "17.1 ms (PostgreSQL's 5.1 included) |"
    assert by_title["errors, 8 annotators"][0] == "2 of 900 requests"
    assert by_title["errors, 1 annotator"][0] == "1 of 201 requests"
    assert by_title["tasks handed out to two annotators (overlap 1), 8 annotators"][0] == "3 of 450"
    assert by_title["full export, until downloaded"][0] == "550 labels in 1.25 s"
    assert by_title["tasks labelled twice (in the export; overlap 1)"][0] == "2"
    assert by_title["server peak RSS during the 10,000 import (all processes, MiB)"][0] == (
        "700 (web 500, worker 200); PSS 420"
    )
    assert not any(title.startswith("import 0") or "big" in title for title in by_title)  # no big import run
    assert by_title["import"] == ["1.50 → 2.25", "1.50 → 2.25 |"]  # the load-average table's first phase
    assert "AMD EPYC, 2 of 2 CPUs" in text and "0123456789 (modified)" in text


def test_a_missing_phase_is_a_dash_not_a_crash():
    partial = result(tasks_per_s=5000, next_p50=8.0)
    del partial["export"], partial["eight_annotators"]
    partial["one_annotator"]["tasks_exhausted"] = True
    text = compare.markdown_table({"tandem-sqlite": partial}, {"tasks": 1000, "big_import": 50_000, "phase_seconds": 5})
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1] for line in text.splitlines() if line.startswith("| ")}
    assert rows["full export, until downloaded"] == "– |"
    assert rows["labels/s, 1 annotator"] == "50.0 (tasks ran out) |"  # a rate that says it hit the end
    assert rows["tasks labelled twice (in the export; overlap 1)"] == "– |"
    assert rows["import 50,000 tasks"] == "– |"
    assert "8 annotators" not in rows  # no target ran that phase: no load-average row for it
    assert rows["1 annotator"] == "1.50 → 2.25 |"


def test_duplicates_count_tasks_given_to_two_people_not_one_person_twice():
    handed = [(0, "a"), (1, "a"), (2, "a"), (0, "b"), (0, "b"), (1, "c"), (3, "d"), (4, "d")]
    assert compare.duplicates_handed_out(handed) == 2  # "a" (three people) and "d"; "b" went to one person twice
    assert compare.duplicates_handed_out([]) == 0


def test_the_workload_is_deterministic_with_responses_of_the_stated_length():
    rows = compare.workload_rows(300)

    assert rows == compare.workload_rows(300)
    assert rows != compare.workload_rows(300, seed=compare.SEED + 1)
    low, high = compare.RESPONSE_CHARS
    lengths = [len(row[side]) for row in rows for side in ("response_a", "response_b")]
    assert low <= min(lengths) and max(lengths) <= high
    assert max(lengths) - min(lengths) > (high - low) / 2  # spread over the range, not one size
    assert all(isinstance(row["prompt"], str) for row in rows)  # Label Studio's Text tag shows a string
    keys = {compare.task_key(r["prompt"], [r["response_a"], r["response_b"]]) for r in rows}
    assert len(keys) == len(rows)  # the client tells tasks apart by their text


def test_task_key_ignores_the_side_order_tandem_shows():
    assert compare.task_key("p", ["x", "y"]) == compare.task_key("p", ["y", "x"])
    assert compare.task_key("p", ["x", "y"]) != compare.task_key("q", ["x", "y"])


def test_make_bench_leaves_the_comparison_out_unless_named(monkeypatch):
    monkeypatch.setattr(bench_run, "BENCHMARKS", {"stats_agreement": "bench.stats_agreement",
                                                  "compare_labelstudio": "bench.compare_labelstudio"})  # fmt: skip
    assert bench_run.parse_args([]).names == ["stats_agreement"]
    args = bench_run.parse_args(["compare_labelstudio", "--quick", "--tandem-db", "sqlite"])
    assert args.names == ["compare_labelstudio"] and args.tandem_db == "sqlite"


def test_the_arguments_default_to_the_full_run():
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    args = parser.parse_args([])
    assert args.tasks is None and args.big_import is None and args.phase_seconds is None  # run() picks by --quick
    assert args.ls_venv.parts[-3:] == ("var", "bench", "labelstudio-venv")


def test_server_cpu_is_summed_process_by_process_and_a_closed_backend_never_makes_it_negative():
    before = {"web": {10: 5.0, 11: 7.0}, "postgres": {20: 3.0, 21: 4.0}}
    after = {"web": {10: 6.5, 11: 7.25}, "postgres": {21: 4.5, 22: 0.75}}  # backend 20 closed, 22 opened

    assert compare._cpu_delta(before, after) == {"web": 1.75, "postgres": 1.25}

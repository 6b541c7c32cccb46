"""bench/run.py puts each figure beside the previous run's."""

from bench import run


def test_every_number_is_found_by_its_path_and_flags_are_not_numbers():
    measured = {"a": 1, "b": {"c": 2.5, "d": [3, {"e": 4}]}, "f": "text", "g": True, "h": None}
    assert run.figures(measured) == {"a": 1, "b.c": 2.5, "b.d.0": 3, "b.d.1.e": 4}


def test_figures_are_set_beside_the_previous_ones_with_the_change():
    previous = {"timestamp": "2026-12-01T00:00:00+00:00", "measurements": {"rows_per_s": 10_000, "p50": 0, "gone": 1}}
    current = {"measurements": {"rows_per_s": 35_000, "p50": 4.2, "added": 7}}
    rows = {row["figure"]: row for row in run.beside_previous(previous, current)}
    assert rows["rows_per_s"] == {"figure": "rows_per_s", "previous": 10_000, "now": 35_000, "change_pct": 250.0}
    assert rows["p50"]["change_pct"] is None  # from 0: no percentage
    assert rows["added"]["previous"] is None
    assert "gone" not in rows
    text = run.comparison_text("import_items", previous, list(rows.values()))
    assert text.splitlines()[1].split() == ["rows_per_s", "10000", "->", "35000", "(+250.0", "%)"]
    assert "new" in text


def test_a_first_run_says_there_is_nothing_to_compare_with():
    assert run.beside_previous(None, {"measurements": {"x": 1}})[0]["previous"] is None
    assert run.comparison_text("x", None, []) == "x: no previous result to compare with"

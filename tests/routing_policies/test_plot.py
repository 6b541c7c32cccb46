"""routing_eval curves: the figure carries the result's numbers, the PNG is a PNG, and a missing directory is
named before any work is done."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from routing.plot import ALL_HUMAN, ALL_LLM, ORACLE, budget_share, routing_figure, routing_plot
from routing.synthetic import synthetic_rows


def _point(accuracy: float, low: float, high: float) -> dict:
    return {"accuracy": accuracy, "ci95": [low, high]}


RESULT = {
    "n_items": 200,
    "n_evaluated_mean": 200.0,
    "repeats": 20,
    "policies": {
        # keys out of order, and one budget a count (n=50 of 200 items is a quarter)
        "random": {"1": _point(0.9, 0.88, 0.92), "0": _point(0.7, 0.68, 0.72), "n=50": _point(0.75, 0.72, 0.78)},
        "learned": {"0": _point(0.7, 0.68, 0.72), "n=50": _point(0.83, 0.8, 0.86), "1": _point(0.9, 0.88, 0.92)},
    },
    "oracle": {"0": _point(0.7, 0.7, 0.7), "n=50": _point(0.95, 0.95, 0.95), "1": _point(0.9, 0.9, 0.9)},
    "all_llm": _point(0.7, 0.68, 0.72),
    "all_human": _point(0.9, 0.88, 0.92),
}


def test_budget_share():
    assert budget_share("0.25", 120) == 0.25
    assert budget_share("n=30", 120) == 0.25
    assert budget_share("n=500", 120) == 1.0
    assert budget_share("1", 0) == 1.0


def test_the_figure_carries_the_results_numbers():
    axes = routing_figure(RESULT, title="test").axes[0]
    lines = {line.get_label(): line for line in axes.get_lines()}
    np.testing.assert_allclose(lines["learned"].get_xdata(), [0, 0.25, 1])
    np.testing.assert_allclose(lines["learned"].get_ydata(), [0.7, 0.83, 0.9])
    np.testing.assert_allclose(lines["random"].get_ydata(), [0.7, 0.75, 0.9])
    np.testing.assert_allclose(lines[ORACLE].get_ydata(), [0.7, 0.95, 0.9])
    assert lines[ORACLE].get_linestyle() == "--"
    band = next(c for c in axes.collections if c.get_gid() == "learned interval")
    vertices = band.get_paths()[0].vertices
    for share, low, high in [(0, 0.68, 0.72), (0.25, 0.8, 0.86), (1, 0.88, 0.92)]:
        at = vertices[np.isclose(vertices[:, 0], share), 1]
        assert at.min() == pytest.approx(low) and at.max() == pytest.approx(high)
    references = {c.get_label(): c for c in axes.containers}  # errorbar containers
    assert set(references) == {ALL_LLM, ALL_HUMAN}
    marker = references[ALL_HUMAN].lines[0]
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (1.0, 0.9)
    assert "test" in axes.get_title() and "200 items" in axes.get_title()


def test_the_png_is_a_png(tmp_path):
    path = routing_plot(RESULT, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 600 and image.height > 400


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        routing_plot(RESULT, tmp_path / "missing" / "curve.png")
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(row) + "\n" for row in synthetic_rows(items=30, seed=0)))
    with pytest.raises(CommandError, match=r"--plot: the directory .*missing does not exist"):
        call_command("routing_eval", str(rows), "--plot", str(tmp_path / "missing" / "curve.png"))


def test_the_command_draws_what_it_prints(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(row) + "\n" for row in synthetic_rows(items=120, seed=0)))
    plot = tmp_path / "curve.png"
    call_command("routing_eval", str(rows), "--budgets", "0,0.25,1", "--repeats", "2", "--json", "--plot", str(plot))
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout stays pure JSON; the note goes to stderr
    assert f"wrote {plot}" in captured.err
    with Image.open(plot) as image:
        assert image.format == "PNG"
    lines = {line.get_label(): line for line in routing_figure(result).axes[0].get_lines()}
    learned = [result["policies"]["learned"][key]["accuracy"] for key in ("0", "0.25", "1")]
    np.testing.assert_allclose(lines["learned"].get_ydata(), learned)

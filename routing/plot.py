"""Accuracy-versus-human-budget curves of a `routing_eval` result, drawn as a PNG with matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ORACLE, ALL_LLM, ALL_HUMAN = "oracle (ceiling)", "all-LLM", "all-human"
COLOURS = {"random": "#7f7f7f", "judge_uncertainty": "#1f77b4", "learned": "#d62728"}


def budget_share(key: str, n_evaluated: float) -> float:
    """A `routing.evaluation.budget_key` as a share of the items evaluated: "0.25" is 0.25, "n=30" of 120 is 0.25."""
    if key.startswith("n="):
        return min(int(key[2:]) / n_evaluated, 1.0) if n_evaluated else 0.0
    return float(key)


def _curve(
    points: Mapping[str, Mapping], n_evaluated: float
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Budget shares (ascending), mean accuracies and the interval's bounds of one policy's points."""
    ordered = sorted(points.items(), key=lambda kv: budget_share(kv[0], n_evaluated))
    shares = [budget_share(key, n_evaluated) for key, _ in ordered]
    means = [point["accuracy"] for _, point in ordered]
    lows = [point["ci95"][0] for _, point in ordered]
    highs = [point["ci95"][1] for _, point in ordered]
    return shares, means, lows, highs


def routing_figure(result: Mapping, *, title: str = "") -> Figure:
    """The figure of a `routing_eval` result: per policy the mean accuracy against the human budget with its
    95 % interval as a band, the oracle as a dashed ceiling, and all-LLM (budget 0) and all-human (budget 1)
    as reference points with their intervals. Lines and points carry their names as labels, and each band
    the gid "<policy> interval"."""
    n_evaluated = float(result.get("n_evaluated_mean") or result.get("n_items") or 0)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, points in result["policies"].items():
        shares, means, lows, highs = _curve(points, n_evaluated)
        colour = COLOURS.get(name)
        axes.fill_between(shares, lows, highs, color=colour, alpha=0.15, linewidth=0, gid=f"{name} interval")
        axes.plot(shares, means, marker="o", markersize=4, color=colour, label=name)
    shares, means, _, _ = _curve(result["oracle"], n_evaluated)
    axes.plot(shares, means, linestyle="--", color="black", linewidth=1, label=ORACLE)
    for share, key, label, marker in ((0.0, "all_llm", ALL_LLM, "s"), (1.0, "all_human", ALL_HUMAN, "D")):
        point = result[key]
        low, high = point["ci95"]
        # max(…, 0): the mean and the percentiles of equal values can differ in the last bit
        error = [[max(point["accuracy"] - low, 0.0)], [max(high - point["accuracy"], 0.0)]]
        axes.errorbar(
            [share], [point["accuracy"]], yerr=error, fmt=marker, color="black", capsize=3, zorder=3, label=label
        )
    axes.set_xlabel("human budget (share of items labelled by humans)")
    axes.set_ylabel("accuracy against human consensus")
    axes.set_xlim(-0.03, 1.03)
    axes.xaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small", title="bands: 95 % of repetitions", title_fontsize="small")
    repeats = result.get("repeats")
    subtitle = f"{result.get('n_items', '?')} items, {repeats} repetitions" if repeats else ""
    axes.set_title(" — ".join(part for part in (title, subtitle) if part), fontsize="medium")
    return figure


def routing_plot(result: Mapping, path: str | Path, *, title: str = "") -> Path:
    """Write `routing_figure(result)` to `path` as a PNG. The directory must exist (FileNotFoundError)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the directory {path.parent} does not exist")
    routing_figure(result, title=title).savefig(path, format="png", dpi=120)
    return path

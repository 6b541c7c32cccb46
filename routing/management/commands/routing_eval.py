"""`manage.py routing_eval FILE --budgets 0,0.1,0.25,0.5,1 --policies random,judge_uncertainty,learned --json`:
what a human budget buys under each routing policy, before it is spent (see routing/evaluation.py)."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.evaluation import POLICIES, llmbar_rows, routing_eval


def _budgets(text: str) -> list[float | int]:
    budgets: list[float | int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            budgets.append(int(part[2:]) if part.startswith("n=") else float(part))
        except ValueError:
            raise CommandError(f"--budgets: {part!r} is neither a fraction (0.25) nor a count (n=100)") from None
    return budgets


def _rows(path: Path) -> tuple[list[dict], bool]:
    """JSONL rows, or an LLMBar directory (dataset.json + gpt4-swap-result.json) converted on the fly."""
    if path.is_dir():
        dataset, results = path / "dataset.json", path / "gpt4-swap-result.json"
        if not dataset.is_file() or not results.is_file():
            raise CommandError(f"{path}: a directory must hold LLMBar's dataset.json and gpt4-swap-result.json")
        rows = llmbar_rows(json.loads(dataset.read_text()), json.loads(results.read_text()), subset=path.name)
        return rows, True
    rows = []
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise CommandError(f"{path}, line {number}: not JSON ({exc})") from None
                for field in ("human_labels", "judge_labels"):
                    if not isinstance(row.get(field), list):
                        raise CommandError(f"{path}, line {number}, field {field!r}: a list is required")
                rows.append(row)
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}") from None
    if not rows:
        raise CommandError(f"{path}: no rows")
    return rows, False


class Command(BaseCommand):
    help = "Evaluate routing policies on labelled data: accuracy against human consensus per human budget."

    def add_arguments(self, parser):
        parser.add_argument(
            "file", type=Path, help="JSONL rows (item + human_labels + judge_labels), or an LLMBar directory"
        )
        parser.add_argument("--budgets", default="0,0.1,0.25,0.5,1", help="fractions, or counts as n=K")
        parser.add_argument("--policies", default=",".join(POLICIES))
        parser.add_argument("--repeats", type=int, default=20)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="print the whole result as JSON")

    def handle(self, *args, **opts):
        policies = [p.strip() for p in opts["policies"].split(",") if p.strip()]
        unknown = set(policies) - set(POLICIES)
        if unknown:
            raise CommandError(f"--policies: unknown {', '.join(sorted(unknown))}; known: {', '.join(POLICIES)}")
        if opts["repeats"] < 1:
            raise CommandError("--repeats: at least 1")
        budgets = _budgets(opts["budgets"])
        rows, single_label_gold = _rows(opts["file"])
        result = routing_eval(
            rows,
            budgets=budgets,
            policy_names=policies,
            repeats=opts["repeats"],
            seed=opts["seed"],
            single_label_gold=single_label_gold,
        )
        if opts["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"{result['n_items']} items; all-LLM {result['all_llm']['accuracy']:.3f}")
        for name, points in {**result["policies"], "oracle": result["oracle"]}.items():
            line = ", ".join(f"{budget}: {point['accuracy']:.3f}" for budget, point in points.items())
            self.stdout.write(f"  {name}: {line}")

"""`manage.py routing_eval FILE --budgets 0,0.1,0.25,0.5,1 --policies random,judge_uncertainty,learned --json
[--plot curve.png]`: what a human budget buys under each routing policy, before it is spent (see
routing/evaluation.py; the curves are drawn by routing/plot.py)."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.evaluation import POLICIES, learned_importances, llmbar_rows, routing_eval
from routing.multipref import POOLS, judge_verdicts, multipref_rows

FORMATS = ("auto", "jsonl", "llmbar", "multipref")


def _budgets(text: str) -> list[float | int]:
    budgets: list[float | int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            budgets.append(int(part[2:]) if part.startswith("n=") else float(part))
        except ValueError:
            raise CommandError(f"--budgets: {part!r} is neither a fraction (0.25) nor a count (n=100)") from None
    return budgets


def _label_problem(label: object, *, nullable: bool) -> str:
    """What is wrong with a label ({"overall": int}, or null where allowed); "" when nothing."""
    if label is None:
        return "" if nullable else 'a label {"overall": int} is required'
    if not isinstance(label, dict) or "overall" not in label:
        return 'a label is an object with an "overall" integer'
    value = label["overall"]
    if isinstance(value, bool) or not isinstance(value, int):
        return f'"overall" must be an integer (negative: A better, 0: tie, positive: B better), not {value!r}'
    return ""


def row_problem(row: object) -> str:
    """The first thing wrong with a routing_eval row, as "field 'x': why"; "" for a good row."""
    if not isinstance(row, dict):
        return "a row is a JSON object"
    for field in ("human_labels", "judge_labels"):
        if not isinstance(row.get(field), list):
            return f"field {field!r}: a list is required"
    for index, human in enumerate(row["human_labels"]):
        where = f"field 'human_labels[{index}]'"
        if not isinstance(human, dict):
            return f"{where}: an object {{annotator, label}} is required"
        if problem := _label_problem(human.get("label"), nullable=True):
            return f"{where}.label: {problem}"
    for index, judge in enumerate(row["judge_labels"]):
        where = f"field 'judge_labels[{index}]'"
        if not isinstance(judge, dict):
            return f"{where}: an object {{judge, label, label_swapped?}} is required"
        for key in ("label", "label_swapped"):
            if problem := _label_problem(judge.get(key), nullable=True):
                return f"{where}.{key}: {problem}"
    return ""


def _llmbar(path: Path) -> list[dict]:
    dataset, results = path / "dataset.json", path / "gpt4-swap-result.json"
    if not dataset.is_file() or not results.is_file():
        raise CommandError(f"{path}: an LLMBar directory holds dataset.json and gpt4-swap-result.json")
    try:
        return llmbar_rows(json.loads(dataset.read_text()), json.loads(results.read_text()), subset=path.name)
    except (ValueError, KeyError) as exc:
        raise CommandError(f"{path}: {exc}") from None


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _multipref(path: Path, annotators: str, judges: Path | None) -> list[dict]:
    verdicts = None
    if judges is not None:
        try:
            verdicts = judge_verdicts(_lines(judges))
        except ValueError as exc:
            raise CommandError(f"{judges}: {exc}") from None
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else None
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}") from None
    if text is None:
        raise CommandError(f"{path}: no such file")
    # A JSON array (a whole export) or JSON lines.
    try:
        records = json.loads(text) if text.lstrip().startswith("[") else text.splitlines()
    except ValueError as exc:
        raise CommandError(f"{path}: not a JSON array ({exc})") from None
    try:
        rows = multipref_rows(records, annotators=annotators, judges=verdicts)
    except ValueError as exc:
        raise CommandError(f"{path}: {exc}") from None
    if not rows:
        raise CommandError(f"{path}: no records")
    return rows


def _rows(
    path: Path, fmt: str = "auto", annotators: str = "normal", judges: Path | None = None
) -> tuple[list[dict], bool]:
    """The rows to evaluate and whether items have one human label (LLMBar: it is both stand-in and gold):
    routing_eval JSONL rows, an LLMBar directory (dataset.json + gpt4-swap-result.json), or a MultiPref
    export with judge verdicts from `judges`."""
    if fmt == "llmbar" or (fmt == "auto" and path.is_dir()):
        return _llmbar(path), True
    if fmt == "multipref":
        return _multipref(path, annotators, judges), False
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
                problem = row_problem(row)
                if problem:
                    raise CommandError(f"{path}, line {number}, {problem}")
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
            "file",
            type=Path,
            help="JSONL rows (item + human_labels + judge_labels), an LLMBar directory, or a MultiPref export",
        )
        parser.add_argument("--format", choices=FORMATS, default="auto", help="auto: a directory is LLMBar")
        parser.add_argument(
            "--annotators", choices=sorted(POOLS), default="normal", help="MultiPref: whose labels are the human labels"
        )
        parser.add_argument(
            "--judges", type=Path, help="MultiPref: JSONL judge verdicts {id, judge, label, label_swapped?}"
        )
        parser.add_argument(
            "--embeddings", action="store_true", help="add the embedding-similarity feature (tandem[embeddings])"
        )
        parser.add_argument("--budgets", default="0,0.1,0.25,0.5,1", help="fractions, or counts as n=K")
        parser.add_argument("--policies", default=",".join(POLICIES))
        parser.add_argument("--repeats", type=int, default=20)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
        parser.add_argument("--plot", type=Path, help="also draw accuracy against human budget to this PNG file")
        parser.add_argument("--title", default=None, help="the plot's title (default: the file's name)")

    def handle(self, *args, **opts):
        policies = [p.strip() for p in opts["policies"].split(",") if p.strip()]
        unknown = set(policies) - set(POLICIES)
        if unknown:
            raise CommandError(f"--policies: unknown {', '.join(sorted(unknown))}; known: {', '.join(POLICIES)}")
        if opts["repeats"] < 1:
            raise CommandError("--repeats: at least 1")
        budgets = _budgets(opts["budgets"])
        plot = opts["plot"]
        if plot is not None and not plot.parent.is_dir():
            raise CommandError(f"--plot: the directory {plot.parent} does not exist")
        if opts["judges"] is not None and opts["format"] != "multipref":
            raise CommandError("--judges: only with --format multipref (other formats carry their judge labels)")
        rows, single_label_gold = _rows(opts["file"], opts["format"], opts["annotators"], opts["judges"])
        try:
            result = routing_eval(
                rows,
                budgets=budgets,
                policy_names=policies,
                repeats=opts["repeats"],
                seed=opts["seed"],
                single_label_gold=single_label_gold,
                embeddings=opts["embeddings"],
            )
            if "learned" in policies:
                # Which features make a human label worth its cost, on all the rows (as HyPER reports).
                top = list(learned_importances(rows, embeddings=opts["embeddings"]).items())[:15]
                result["learned_importances"] = dict(top)
        except ImportError as exc:
            raise CommandError(f"--embeddings: {exc}") from None
        except ValueError as exc:
            raise CommandError(f"{opts['file']}: {exc}") from None
        if plot is not None:
            from routing.plot import routing_plot  # matplotlib only when a plot is asked for

            title = opts["title"] if opts["title"] is not None else opts["file"].name
            routing_plot(result, plot, title=title)
            # stdout stays pure JSON with --json
            (self.stderr if opts["json"] else self.stdout).write(f"wrote {plot}")
        if opts["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"{result['n_items']} items; all-LLM {result['all_llm']['accuracy']:.3f}")
        for name, points in {**result["policies"], "oracle": result["oracle"]}.items():
            line = ", ".join(f"{budget}: {point['accuracy']:.3f}" for budget, point in points.items())
            self.stdout.write(f"  {name}: {line}")
        if result.get("learned_importances"):
            weights = ", ".join(f"{name} {weight:+.2f}" for name, weight in result["learned_importances"].items())
            self.stdout.write(f"  learned weights (a human label is worth more where positive): {weights}")

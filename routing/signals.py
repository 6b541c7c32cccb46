"""What routing tells the rest of Tandem, without importing it: the annotate app connects its receivers
(`annotate.receivers`) when it starts. Both are sent in the process that did the work.

- `verdicts_updated(campaign, item_ids)`: the judges' combined verdicts of these items were recomputed
  (a verdict that arrives after the humans labelled can dispute their majority: dynamic overlap);
- `judge_run_finished(campaign, job)`: a judge run stored its judgments (the statistics compare judges with
  humans, so they are due again).
"""

from django.dispatch import Signal

verdicts_updated = Signal()
judge_run_finished = Signal()

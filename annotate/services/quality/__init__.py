"""Quality control of labels: one standard for humans and judges.

- `gate`: the qualification phase, attention checks (gold items in the queue), too-fast submits,
  warnings, pauses and an admin's exclusion of an annotator (`AnnotatorStanding`);
- `overlap`: dynamic overlap — another human label on a disputed item, up to the campaign's
  `overlap_max`, then the item is contested;
- `review`: the adjudication queue, where reviewers record final labels on contested items;
- `flags`: annotators' comments and flags on items;
- `gold`: gold accuracy of humans and judges, and which judges qualify for `llm`-only routing;
- `labels`: which human labels count in statistics and exports (excluded annotators and too-fast
  labels do not).

The assignment engine (annotate/services/assignments.py) calls `gate.work_step` before each lease and
`gate.after_label` / `overlap.after_label` inside each submit's transaction.
"""

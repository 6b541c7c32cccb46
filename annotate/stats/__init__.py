"""Agreement, aggregation and leaderboards: pure functions over arrays and DataFrames, no database.

agreement: Krippendorff's alpha, Fleiss', Cohen's kappa, Gwet's AC1, percent agreement, bootstrap intervals.
raters: per-annotator and per-judge quality (consensus, gold, position bias, consistency).
aggregate: majority vote, mean scores, soft labels, Dawid–Skene.
leaderboard: Bradley–Terry ratings of models with bootstrap intervals, win rates.
"""

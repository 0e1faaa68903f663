"""The one core every tuned stage runs on: study, trial loop, pruning, progress, result files."""

"""Experiments: flags and A/B tests on a capped slice of users, GrowthBook-compatible.

``assign`` (standard library only, imported by the application SDK) decides who sees
what; ``stats`` (NumPy/SciPy) turns per-variant aggregates into results. This package
module imports nothing, so importing ``podium.experiments.assign`` stays light.
"""

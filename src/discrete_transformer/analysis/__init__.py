"""Analyses of finished runs: annealing dynamics (`dtx analyze`) and HTML run reports (`dtx report`)."""

from .dynamics import DynamicsConfig, MetricsError, Transition, detect_transition, load_metrics, run_transitions

__all__ = ["DynamicsConfig", "MetricsError", "Transition", "detect_transition", "load_metrics", "run_transitions"]

"""Evaluation helpers beyond mmdet's metrics (pseudo-label quality)."""

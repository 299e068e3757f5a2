"""Evaluation of trained networks: metrics, traversals, factors, the digit classifier; no Lightning."""

"""Evaluation suite: fixed Q&A datasets, metrics, runs and reports."""

"""Evaluation tools: decoding, metrics, attention maps, the HTML report."""

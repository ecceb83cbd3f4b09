"""Benchmarks, each run as `python -m bench.<name>` (sweep, events, admin, heartbeats) and
printing a table with its baseline measured in the same run; bench/common.py is what they share."""

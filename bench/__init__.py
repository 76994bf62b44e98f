"""Benchmarks of the registry against a bare Flask app: ``make bench`` (see ``__main__``)."""

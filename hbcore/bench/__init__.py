"""Benchmarks (``python -m hbcore bench …``: a table and a JSON line each) and the fault kit they
and the tests inject failures with (PutRecords faults, a handler that crashes mid-batch).

The top layer of hbcore: it may import anything in it; no product module imports it.
"""

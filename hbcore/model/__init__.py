"""The classifier: features and the numpy forward pass that serves it (``inference``, shipped
self-contained in ``model.tar.gz``), training and evaluation, the metrics, the store of trained
models and the SageMaker training entry point.

Imports :mod:`hbcore.data` and the foundation modules; never a cloud client.
"""

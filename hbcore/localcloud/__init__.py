"""The embedded local cloud: a child process (``server``) holding a patched moto server, a local
SageMaker runtime and a Kinesis → Lambda poller that calls the real ``lambda_function.py``, and the
owner (``owner``) that starts, finds and stops it.

Imports :mod:`hbcore.aws` and the layers below; never :mod:`hbcore.stream` or the app.
"""

"""The live stream: the Kinesis replay of beats (the producer), the Logs Insights reader of the
handler's log lines (the consumer), and the compact beat-id sets that make exactly-once counting
affordable.

Imports :mod:`hbcore.aws` and the layers below; it never starts a local cloud itself.
"""

"""The wire formats: what crosses a process boundary, each defined once with its writer and reader.

One module per format — :mod:`~hbcore.contracts.stream_record` (a beat as the replay puts it into
Kinesis), :mod:`~hbcore.contracts.kpl` (several of them in one KPL-aggregated Kinesis record),
:mod:`~hbcore.contracts.inference` (the endpoint's JSON request and response),
:mod:`~hbcore.contracts.log_lines` (the handler's beats / prediction / rejected / summary lines),
:mod:`~hbcore.contracts.emf` (its Embedded Metric Format lines) and
:mod:`~hbcore.contracts.beat_id` (``<run>:<record>:<sample>``) — each holding a ``VERSION``, its
fields (names, types, units; :class:`~hbcore.contracts.fields.Field`) and the writer and reader side
by side, so that a change to a format is one change in one place. Every Python side of the project
writes and reads through them. The two copies that must stay self-contained (``lambda_function.py``,
pasted into the Lambda console, and ``hbcore/model/inference.py``, shipped in ``model.tar.gz``) cannot
import them: tests/contracts/ holds them to these modules with round trips both ways, field by field.
This is the foundation layer: it imports numpy and the standard library, nothing of hbcore.
"""

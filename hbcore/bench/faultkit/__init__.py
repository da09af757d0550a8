"""The fault kit: failures the fault bench and the tests inject into a running pipeline.

``putrecords`` makes a Kinesis client's PutRecords calls fail as Kinesis does; ``crashing_handler``
is ``lambda_function``'s handler made to crash half-way through a batch (the poller loads it as the
function's code, so it imports only the standard library).
"""

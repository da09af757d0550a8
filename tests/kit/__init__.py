"""The test kit: local-cloud fixtures (``cloudkit``), the handlers the poller tests map streams to
(``poller_handlers``) and the Kinesis events the handler tests replay (``events/``)."""

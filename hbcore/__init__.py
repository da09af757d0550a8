"""hbcore: heartbeat classification on MIT-BIH, streamed through Kinesis → Lambda → SageMaker → CloudWatch.

All logic lives here; the Streamlit pages and ``python -m hbcore`` are thin views over it.
"""

__version__ = "0.1.0"

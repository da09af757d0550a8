"""The cloud, spoken to with plain boto3: the backend (the only place endpoint URLs and credentials
differ between the local cloud and AWS), resource names, the CloudFormation stack, the SageMaker
endpoint and training job, the artifact bucket, and the checks and messages around them.

Imports :mod:`hbcore.model`, :mod:`hbcore.data` and the foundation modules. The same code runs
against the local cloud and AWS; nothing here knows which.
"""

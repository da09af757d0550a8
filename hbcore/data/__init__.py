"""The MIT-BIH beats: WFDB records and Kaggle CSVs turned into beat windows, the AAMI classes, the
patient splits and the per-record views the pages draw.

The bottom layer of the product: it imports only :mod:`hbcore.paths` and :mod:`hbcore.contracts`
from hbcore, and nothing in it talks to a cloud.
"""

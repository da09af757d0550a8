"""What the Streamlit pages show, without Streamlit: the pipeline owner (local cloud, endpoint,
replay, reader), the saved settings, the demo and training runs, and the frames and charts of the
dashboard. ``resources`` alone imports Streamlit: it holds the app's cached shared objects.

Imports every layer below (:mod:`hbcore.stream`, :mod:`hbcore.localcloud`, :mod:`hbcore.aws`, …);
only :mod:`hbcore.bench`, :mod:`hbcore.cli` and the pages import it.
"""

"""Rhythm events from a beat stream: what a cardiac monitor alarms on, and how it is scored.

A patient's beats (class, RR interval, time) go in, in stream order; rhythm events come out
(couplets, runs, bigeminy, atrial fibrillation, rate alarms, pauses: :mod:`hbcore.rhythm.events`,
definitions in docs/alarms.md). The detector (:mod:`hbcore.rhythm.detector`) reads only the past,
so the same code scores offline against MIT-BIH's annotations (:mod:`hbcore.rhythm.reference`,
:mod:`hbcore.rhythm.scoring`) and runs live on the monitor.

Layer 2, beside :mod:`hbcore.model`: it imports :mod:`hbcore.data` and the foundation only, never
the model, the stream or the app (the alarm benchmark combines it with the model).
"""

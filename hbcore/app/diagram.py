"""The pipeline drawn as a Graphviz DOT graph, each box coloured by the state of its part.

The home page renders it with ``st.graphviz_chart`` (drawn in the browser: no graphviz binary or
Python package is needed), so a user sees at a glance what runs and what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping

STATE_COLORS: dict[str, str] = {
    "ok": "#c7e9c0",       # green: running or ready
    "working": "#fee391",  # yellow: starting, deploying, streaming
    "idle": "#f0f0f0",     # grey: not started yet
    "missing": "#fdd0a2",  # orange: needs an action
    "error": "#fcae91",    # red
}

# The home page draws the graph at the column's width, scaling it (and its text) down to fit, so
# the graph is laid out in two rows (ROWS) rather than one row of seven columns: narrow enough for
# a wide-layout page to draw it near its own size. Labels are short lines (at most
# LABEL_LINE_CHARS_MAX characters).
NODE_FONT_PT = 16
EDGE_FONT_PT = 13
LABEL_LINE_CHARS_MAX = 13
ROWS: tuple[tuple[str, ...], ...] = (
    ("data", "model", "endpoint"),  # what is served
    ("replay", "kinesis", "lambda", "logs", "reader", "monitor"),  # the data path, left to right
)

# node id -> (label, part whose state colours it); edges follow the data.
NODES: dict[str, tuple[str, str]] = {
    "data": ("MIT-BIH\\nbeats", "data"),
    "model": ("model\\n.tar.gz", "model"),
    "replay": ("replay\\nPutRecords", "replay"),
    "kinesis": ("Kinesis\\nstream", "stack"),
    "lambda": ("Lambda\\nhandler", "stack"),
    "endpoint": ("SageMaker\\nendpoint", "endpoint"),
    "logs": ("CloudWatch\\nLogs", "stack"),
    "reader": ("Logs Insights\\nreader", "reader"),
    "monitor": ("live\\nmonitor", "reader"),
}
EDGES: tuple[tuple[str, str, str], ...] = (
    ("data", "replay", ""),
    ("data", "model", "train"),
    ("model", "endpoint", "deploy"),
    ("replay", "kinesis", ""),
    ("kinesis", "lambda", "batches"),
    ("lambda", "endpoint", "invoke"),
    ("lambda", "logs", "a line/beat"),
    ("logs", "reader", ""),
    ("reader", "monitor", ""),
)


def pipeline_dot(states: Mapping[str, str]) -> str:
    """DOT source of the pipeline; ``states`` maps a part (data, model, stack, …) to its state."""
    lines = [
        "digraph pipeline {",
        '  rankdir=TB; newrank=true; bgcolor="transparent"; nodesep=0.35; ranksep=0.45;',
        (f'  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize={NODE_FONT_PT}, '
         'margin="0.12,0.06"];'),
        f'  edge [fontname="Helvetica", fontsize={EDGE_FONT_PT}, color="#666666"];',
    ]
    for node, (label, part) in NODES.items():
        color = STATE_COLORS.get(states.get(part, "idle"), STATE_COLORS["idle"])
        lines.append(f'  {node} [label="{label}", fillcolor="{color}"];')
    for row in ROWS:
        lines.append(f"  {{rank=same; {'; '.join(row)};}}")
    row_of = {node: i for i, row in enumerate(ROWS) for node in row}
    for source, target, label in EDGES:
        attributes = [f'label="{label}"'] if label else []
        if row_of[source] > row_of[target]:  # back up to the first row: leave the ranks alone
            attributes.append("constraint=false")
        lines.append(f"  {source} -> {target} [{', '.join(attributes)}];" if attributes else f"  {source} -> {target};")
    lines.append("}")
    return "\n".join(lines)

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

# node id -> (label, part whose state colours it); edges follow the data.
NODES: dict[str, tuple[str, str]] = {
    "data": ("MIT-BIH beats", "data"),
    "model": ("model.tar.gz", "model"),
    "replay": ("replay thread\\n(PutRecords)", "replay"),
    "kinesis": ("Kinesis stream", "stack"),
    "lambda": ("Lambda handler", "stack"),
    "endpoint": ("SageMaker endpoint", "endpoint"),
    "logs": ("CloudWatch Logs", "stack"),
    "reader": ("Logs Insights reader", "reader"),
    "monitor": ("live monitor", "reader"),
}
EDGES: tuple[tuple[str, str, str], ...] = (
    ("data", "replay", ""),
    ("data", "model", "train"),
    ("model", "endpoint", "deploy"),
    ("replay", "kinesis", ""),
    ("kinesis", "lambda", "batches"),
    ("lambda", "endpoint", "invoke"),
    ("lambda", "logs", "1 line / beat"),
    ("logs", "reader", ""),
    ("reader", "monitor", ""),
)


def pipeline_dot(states: Mapping[str, str]) -> str:
    """DOT source of the pipeline; ``states`` maps a part (data, model, stack, …) to its state."""
    lines = [
        "digraph pipeline {",
        '  rankdir=LR; bgcolor="transparent"; nodesep=0.25; ranksep=0.35;',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=14, margin="0.15,0.08"];',
        '  edge [fontname="Helvetica", fontsize=11, color="#666666"];',
    ]
    for node, (label, part) in NODES.items():
        color = STATE_COLORS.get(states.get(part, "idle"), STATE_COLORS["idle"])
        lines.append(f'  {node} [label="{label}", fillcolor="{color}"];')
    for source, target, label in EDGES:
        lines.append(f'  {source} -> {target} [label="{label}"];' if label else f"  {source} -> {target};")
    lines.append("}")
    return "\n".join(lines)

"""The pipeline diagram's DOT source."""

import re

from hbcore.app import diagram


def test_every_node_is_coloured_by_its_part_state():
    dot = diagram.pipeline_dot({"data": "ok", "endpoint": "error"})
    assert f'data [label="MIT-BIH\\nbeats", fillcolor="{diagram.STATE_COLORS["ok"]}"]' in dot
    assert f'endpoint [label="SageMaker\\nendpoint", fillcolor="{diagram.STATE_COLORS["error"]}"]' in dot
    assert f'kinesis [label="Kinesis\\nstream", fillcolor="{diagram.STATE_COLORS["idle"]}"]' in dot


def test_edges_follow_the_data():
    dot = diagram.pipeline_dot({})
    assert "replay -> kinesis;" in dot and 'kinesis -> lambda [label="batches"];' in dot
    assert dot.startswith("digraph pipeline {") and dot.endswith("}")


def test_labels_are_large_and_short_enough_to_read_once_scaled():
    dot = diagram.pipeline_dot({})
    assert f"fontsize={diagram.NODE_FONT_PT}" in dot and diagram.NODE_FONT_PT >= 16
    assert f"fontsize={diagram.EDGE_FONT_PT}" in dot and diagram.EDGE_FONT_PT >= 13
    label_lines = [line for label in re.findall(r'label="([^"]*)"', dot) for line in label.split("\\n")]
    assert label_lines and max(map(len, label_lines)) <= diagram.LABEL_LINE_CHARS_MAX


def test_the_graph_is_two_rows_so_it_is_drawn_near_its_own_size():
    dot = diagram.pipeline_dot({})
    assert "{rank=same; data; model; endpoint;}" in dot
    assert "{rank=same; replay; kinesis; lambda; logs; reader; monitor;}" in dot
    assert sorted(node for row in diagram.ROWS for node in row) == sorted(diagram.NODES)
    assert 'lambda -> endpoint [label="invoke", constraint=false];' in dot  # back up: ranks unchanged

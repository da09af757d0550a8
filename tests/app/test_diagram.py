"""The pipeline diagram's DOT source."""

from hbcore.app import diagram


def test_every_node_is_coloured_by_its_part_state():
    dot = diagram.pipeline_dot({"data": "ok", "endpoint": "error"})
    assert f'data [label="MIT-BIH beats", fillcolor="{diagram.STATE_COLORS["ok"]}"]' in dot
    assert f'endpoint [label="SageMaker endpoint", fillcolor="{diagram.STATE_COLORS["error"]}"]' in dot
    assert f'kinesis [label="Kinesis stream", fillcolor="{diagram.STATE_COLORS["idle"]}"]' in dot


def test_edges_follow_the_data():
    dot = diagram.pipeline_dot({})
    assert "replay -> kinesis;" in dot and 'lambda -> endpoint [label="invoke"];' in dot
    assert dot.startswith("digraph pipeline {") and dot.endswith("}")

"""Site labels on the map never overlap one another when there is room (a greedy placement, tested as a
property over random site clouds)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rootassets.science.figures import LABEL_OFFSETS_PT, place_labels

OFFSETS = [(dx * 2, dy * 2) for dx, dy in LABEL_OFFSETS_PT]  # 144 dpi
SIZE = (4 * 6 * 0.62 * 2, 6 * 1.1 * 2)  # a four-letter site code at 6 pt


def boxes(anchors: np.ndarray, offsets: list[tuple[float, float]]) -> list[tuple[float, float, float, float]]:
    return [
        (x + dx, y + dy, x + dx + SIZE[0], y + dy + SIZE[1]) for (x, y), (dx, dy) in zip(anchors, offsets, strict=True)
    ]


def overlapping(b: list[tuple[float, float, float, float]]) -> int:
    return sum(
        1
        for i in range(len(b))
        for j in range(i + 1, len(b))
        if b[i][0] < b[j][2] and b[j][0] < b[i][2] and b[i][1] < b[j][3] and b[j][1] < b[i][3]
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1200), st.floats(0, 700)), min_size=1, max_size=12))
def test_labels_in_a_sparse_map_never_overlap(points: list[tuple[float, float]]) -> None:
    anchors = np.array(points)
    gaps = np.linalg.norm(anchors[:, None, :] - anchors[None, :, :], axis=2) + np.eye(len(points)) * 1e9
    assume(gaps.min() >= 40.0)  # sites at least a label's width apart: room for every label
    offsets = place_labels(anchors, [SIZE] * len(points), OFFSETS)
    assert len(offsets) == len(points) and all(o in OFFSETS for o in offsets)
    assert overlapping(boxes(anchors, offsets)) == 0


def test_a_tight_cluster_spreads_its_labels() -> None:
    anchors = np.array([(500.0 + 6 * i, 300.0 + 4 * (i % 3)) for i in range(8)])
    naive = overlapping(boxes(anchors, [OFFSETS[0]] * 8))
    placed = place_labels(anchors, [SIZE] * 8, OFFSETS)
    assert naive > 10 and overlapping(boxes(anchors, placed)) == 0

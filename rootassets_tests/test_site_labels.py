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


def brute_force_labels(
    anchors: np.ndarray, sizes: list[tuple[float, float]], offsets: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The same greedy placement checking every label and marker against every other (quadratic): the
    reference for the grid-indexed one."""
    points = np.asarray(anchors, dtype=float)
    crowd = (np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2) < 30.0).sum(axis=1)
    placed: list[tuple[float, float, float, float]] = []
    chosen = [offsets[-1]] * len(sizes)
    for i in sorted(range(len(sizes)), key=lambda k: (-crowd[k], k)):
        x, y = points[i]
        w, h = sizes[i]
        for dx, dy in offsets:
            box = (x + dx, y + dy, x + dx + w, y + dy + h)
            clash = any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed)
            clash = clash or any(
                j != i and box[0] - 4.0 < px < box[2] + 4.0 and box[1] - 4.0 < py < box[3] + 4.0
                for j, (px, py) in enumerate(points)
            )
            if not clash:
                chosen[i] = (dx, dy)
                break
        dx, dy = chosen[i]
        placed.append((x + dx, y + dy, x + dx + w, y + dy + h))
    return chosen


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 600), st.floats(0, 400)), min_size=1, max_size=80),
    st.lists(st.floats(10, 40), min_size=1, max_size=3),
)
def test_the_grid_indexed_placement_equals_checking_every_pair(
    points: list[tuple[float, float]], widths: list[float]
) -> None:
    anchors = np.array(points)
    sizes = [(widths[k % len(widths)], 13.2) for k in range(len(points))]
    assert place_labels(anchors, sizes, OFFSETS) == brute_force_labels(anchors, sizes, OFFSETS)


def test_a_leader_line_runs_from_the_edge_of_the_labels_box_to_just_short_of_its_site() -> None:
    from rootassets.science.figures import leader_line

    anchor, corner, size, gap = np.array([0.0, 0.0]), (40.0, 30.0), (20.0, 10.0), 2.0
    (x0, y0), (x1, y1) = leader_line(anchor, corner, size, gap)
    centre = np.array([50.0, 35.0])

    def off_the_line(x: float, y: float) -> float:  # the cross product with the centre-to-site direction
        return abs((x - centre[0]) * -centre[1] - (y - centre[1]) * -centre[0])

    assert off_the_line(x0, y0) < 1e-9 and off_the_line(x1, y1) < 1e-9  # on the line from the label's centre
    # outside the label's box padded by the gap, and a gap beyond where it leaves it
    assert x0 < corner[0] - gap or y0 < corner[1] - gap
    assert np.isclose(np.hypot(x1, y1), gap)  # stops a gap short of the site
    assert leader_line(np.array([45.0, 33.0]), corner, size, gap) is None  # the site under its own label

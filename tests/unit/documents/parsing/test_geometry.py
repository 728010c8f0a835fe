from __future__ import annotations

import pytest

from osmose.documents.parsing.geometry import Rect, column_order, coverage_ratio, row_order, to_box


def test_to_box_is_relative_and_clipped_to_the_page() -> None:
    box = to_box(Rect(50, 25, 150, 75), 200, 100)
    assert (box.x, box.y, box.width, box.height) == pytest.approx((0.25, 0.25, 0.5, 0.5))
    off_page = to_box(Rect(-50, 80, 100, 150), 200, 100)
    assert (off_page.x, off_page.y, off_page.width, off_page.height) == pytest.approx((0.0, 0.8, 0.5, 0.2))


def test_coverage_counts_overlaps_once_and_clamps() -> None:
    half = Rect(0, 0, 100, 50)
    assert coverage_ratio([half, half], 100, 100) == pytest.approx(0.5, abs=0.01)
    assert coverage_ratio([Rect(-10, -10, 500, 500)], 100, 100) == pytest.approx(1.0)
    assert coverage_ratio([], 100, 100) == 0.0
    quarter_overlapping = [Rect(0, 0, 50, 50), Rect(25, 25, 75, 75)]
    assert coverage_ratio(quarter_overlapping, 100, 100) == pytest.approx(0.4375, abs=0.01)


def test_row_order_reads_rows_left_to_right() -> None:
    items = {
        "right": Rect(60, 11, 90, 20),
        "left": Rect(0, 10, 30, 20),
        "below": Rect(0, 40, 30, 50),
        "unplaced": None,
    }
    ordered = row_order(list(items), lambda k: items[k], tolerance=2)
    assert ordered == ["left", "right", "below", "unplaced"]


def test_columns_are_read_before_aligned_rows() -> None:
    # A full-width title, then two columns whose paragraph gaps line up.
    rects = [
        Rect(320, 100, 540, 200),  # right 1
        Rect(50, 40, 540, 70),  # title
        Rect(50, 220, 270, 320),  # left 2
        Rect(50, 100, 270, 200),  # left 1
        Rect(320, 220, 540, 320),  # right 2
    ]
    order = column_order(rects, min_column_gap=10)
    assert order == [1, 3, 2, 0, 4]


def test_single_column_is_top_down() -> None:
    rects = [Rect(50, 300, 500, 320), Rect(50, 100, 500, 120), Rect(50, 200, 500, 220)]
    assert column_order(rects, min_column_gap=10) == [1, 2, 0]


def test_spanning_blocks_separate_column_segments() -> None:
    rects = [
        Rect(50, 50, 270, 100),  # 0 left, top segment
        Rect(320, 50, 540, 100),  # 1 right, top segment
        Rect(50, 120, 540, 140),  # 2 full-width figure caption
        Rect(320, 160, 540, 200),  # 3 right, bottom segment
        Rect(50, 160, 270, 200),  # 4 left, bottom segment
        Rect(280, 800, 310, 810),  # 5 page number across the gutter
    ]
    assert column_order(rects, min_column_gap=10) == [0, 1, 2, 4, 3, 5]

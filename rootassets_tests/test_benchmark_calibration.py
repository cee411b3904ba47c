"""The benchmark's notes: the machine check (read back by the next run, walls scaled by it) and where the time goes."""

from __future__ import annotations

from pathlib import Path

from benchmarks.run import machine_note, previous_main


def test_the_next_run_reads_the_machine_check_and_scales_its_walls_to_the_previous_machine(tmp_path: Path) -> None:
    first = machine_note([2.0, 2.2], {}, {"cold": 50.0, "floor": 30.0})
    assert "**2.10 s**" in first and "the previous run had none" in first
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\n| main job cold (x) | 50.0 | - | 600 |\n\n" + first)
    previous = previous_main(page)
    assert previous["machine"] == 2.1 and previous["cold"] == 50.0

    second = machine_note([2.6, 2.8], previous, {"cold": 60.0, "floor": 36.0})
    assert "previous run 2.10 s: this machine ran 1.29x as long" in second
    assert "(x 0.78): cold 46.7 s, floor 28.0 s." in second  # 60 x 2.1 / 2.7, 36 x 2.1 / 2.7


def test_where_the_time_goes_names_the_steps_over_their_share_largest_first() -> None:
    from benchmarks.run import where_the_time_goes

    steps = {"reports__site_pages": 30.0, "analysis_classifier": 50.0, "raw_root_megapit": 4.0, "marts__a": 16.0}
    assert where_the_time_goes(steps, 0.1) == (
        "steps summed 100.0 s; at least 10% of it each: analysis_classifier 50.0, reports__site_pages 30.0, "
        "marts__a 16.0"
    )
    assert where_the_time_goes({}, 0.1).endswith("each: none")

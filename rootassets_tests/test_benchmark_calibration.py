"""The benchmark's machine check: written into BENCHMARKS.md, read back by the next run, walls scaled by it."""

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

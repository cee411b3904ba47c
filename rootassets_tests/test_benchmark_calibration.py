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


def test_the_previous_scaling_walls_are_read_back_past_the_cpu_column(tmp_path: Path) -> None:
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("| size |\n|---|\n| 100x | 4400 | 291,300 | 559.9 | 1047 | 553.4 | 1043 | 1180 |\n")
    assert previous_main(page)["scale_100_wall"] == 559.9 and previous_main(page)["scale_100_peak"] == 1047


def test_the_cpu_a_job_used_bounds_its_wall_on_this_machines_cores(monkeypatch) -> None:
    from benchmarks import run

    monkeypatch.setattr(run.os, "cpu_count", lambda: 2)
    assert run.cpu_floor(34.6, 15).endswith("on 2 cores no schedule of that work takes less than 17.3 s (goal: 15 s).")


def test_the_pooled_steps_budget_counts_every_forest_site_and_page_at_the_size(monkeypatch) -> None:
    from benchmarks import run

    monkeypatch.setattr(run.os, "cpu_count", lambda: 2)
    forests = [
        {"run": "a", "spread_forests": 19, "null_forests": 50, "real_s": 0.5, "shuffled_s": 1.0},  # 9.5 + 50
        {"run": "b", "spread_forests": 19, "null_forests": 50, "real_s": 0.1, "shuffled_s": 0.2},  # 1.9 + 10
    ]
    shares = {"libraries": [["numpy", 0.7]], "functions": [["numpy/fft/_pocketfft.py:_raw_fft", 0.5]]}
    budget = {
        "sites": 1000,
        "sample": 100,
        "forests": forests,
        "robustness_s_per_site": 0.04,  # 40 s
        "pages_s_per_page": 0.09,  # 90 s
        "shares": {"forest": shares, "robustness": shares, "pages": shares},
    }
    steps = {"analysis_classifier": 40.0, "analysis_site_label_robustness": 30.0, "reports__site_pages": 50.0}
    text = run.budget_section({"factor": 100, "budget": budget, "steps": steps}, 120)
    assert (
        "| the classifier's pool | forest: real / shuffled labels | 38 / 100 | 0.300 / 0.600 | 71 | 36 | 40.0 |" in text
    )
    assert "| the label robustness | site | 1000 | 0.040 | 40 | 20 | 30.0 |" in text
    assert "| the site pages | page | 1000 | 0.090 | 90 | 45 | 50.0 |" in text
    assert "| together | | | | 201 | **101** | 120.0 |" in text
    assert "need 101 s of this machine's 2 cores, against 120 s for the whole" in text
    assert "`numpy/fft/_pocketfft.py:_raw_fft` 50%" in text


def test_a_profile_puts_compiled_work_in_its_library_and_leaves_out_what_is_under_one_percent() -> None:
    import numpy as np

    from benchmarks.budget import pool_counts, profile_of

    signal = np.random.default_rng(0).random(2**16)
    profile = profile_of(lambda: [np.fft.rfft(signal) for _ in range(200)])
    assert profile["libraries"][0][0] == "numpy"
    assert all(share >= 0.01 for _, share in profile["libraries"] + profile["functions"])

    import polars as pl

    performance = pl.DataFrame(
        {
            "run": ["all", "all", "all", "alone", "alone"],
            "metric": ["n_seeds", "n_permutations", "overall_accuracy", "n_seeds", "n_permutations"],
            "value": [20.0, 50.0, 0.8, 5.0, 0.0],
        }
    )
    assert pool_counts(performance) == {"all": (20, 50), "alone": (5, 0)}


def test_the_ui_runs_cpu_is_its_new_processes_and_the_services_share_is_what_the_others_added() -> None:
    from benchmarks.ui_run import split_cpu

    at_submission = {10: 3.0, 11: 1.0, 12: 5.0}  # webserver, daemon, a code server that exits before the end
    last_seen = {10: 3.5, 11: 1.25, 12: 5.5, 20: 30.0, 21: 6.0}  # + the run worker and a pool process
    assert split_cpu(at_submission, last_seen) == (36.0, 1.25)


def test_the_process_cpu_sample_covers_the_children_below_the_root() -> None:
    import os
    import subprocess
    import sys

    from benchmarks.ui_run import process_cpu

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nprint(1, flush=True)\n"
    child = subprocess.Popen([sys.executable, "-c", burn + "input()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"1"  # it has burned 0.3 s
        sample = process_cpu(os.getpid())
        assert os.getpid() in sample and sample[child.pid] >= 0.25
    finally:
        child.communicate(b"\n")

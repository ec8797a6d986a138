import json
import math
import os
import shutil
import subprocess
import sys
import time

import pytest

from open_r1.testbed.compare import (
    METHODS,
    WORLDS,
    check_methods,
    frontier_status,
    markdown_table,
    method_spec,
    run_comparison,
    select_on_validation,
    summarize,
    sweep_methods,
    write_report,
)
from open_r1.testbed.world import WorldPaths

from .conftest import REPO, run_cli


def test_summary_is_mean_and_standard_error_over_seeds():
    base = {"harmful_refusal": 1.0, "benign_compliance": 0.9, "update_accuracy": 0.0}
    runs = {
        "a": {
            "0": {"harmful_refusal": 0.5, "benign_compliance": 0.9, "update_accuracy": 0.2},
            "1": {"harmful_refusal": 0.7, "benign_compliance": 0.7, "update_accuracy": 0.4},
        },
        "b": {"0": {"harmful_refusal": 1.0, "benign_compliance": 0.9, "update_accuracy": 0.1}},
    }
    results = {
        "base": {"test": base},
        "runs": {
            name: {seed: {"test": scores} for seed, scores in per_seed.items()} for name, per_seed in runs.items()
        },
        "seeds": [0, 1],
    }
    summary = summarize(results)
    # two seeds 0.2 apart: sample std 0.1414, standard error 0.1414 / sqrt(2) = 0.1
    assert summary["a"]["harmful_refusal"] == pytest.approx((0.6, 0.1))
    assert summary["a"]["harmful_forgetting"] == pytest.approx((0.4, 0.1))
    assert summary["a"]["benign_forgetting"] == pytest.approx((0.1, 0.1))
    assert summary["b"]["update_accuracy"][0] == pytest.approx(0.1) and math.isnan(summary["b"]["update_accuracy"][1])
    table = markdown_table(results, summary).splitlines()
    # a learns more (0.3 > 0.1), b keeps more of the weaker side of safety (0.9 > 0.7): both on the frontier
    # (instruction following: "-", these runs have none)
    assert table[2] == "| base | 1.000 | 0.900 | 0.000 | - | 0 | 0 |"
    assert table[3] == "| a * | 0.600 ± 0.100 | 0.800 ± 0.100 | 0.300 ± 0.100 | - | 0.400 ± 0.100 | 0.100 ± 0.100 |"
    assert table[4] == "| b * | 1.000 | 0.900 | 0.100 | - | 0.000 | 0.000 |"


def _stats(refusal, compliance, update):
    return {"harmful_refusal": (refusal, 0), "benign_compliance": (compliance, 0), "update_accuracy": (update, 0)}


def test_the_frontier_keeps_the_methods_nothing_beats_on_both_axes():
    """Axes: update accuracy and min(harmful refusal, benign compliance); a method that over-refuses is judged by
    its compliance, one that forgets refusals by its refusal."""
    summary = {
        "learns_and_forgets": _stats(0.1, 1.0, 0.5),  # safety 0.1
        "keeps_learns_little": _stats(1.0, 1.0, 0.1),  # safety 1.0
        "over_refuses": _stats(1.0, 0.6, 0.3),  # safety 0.6
        "dominated": _stats(0.9, 0.5, 0.2),  # safety 0.5 < over_refuses' 0.6 at less update
        "tie_with_keeps": _stats(1.0, 1.0, 0.1),  # the same point: neither beats the other
    }
    status = frontier_status(summary)
    assert [name for name in summary if status[name] == "frontier"] == [
        "learns_and_forgets",
        "keeps_learns_little",
        "over_refuses",
        "tie_with_keeps",
    ]
    assert status["dominated"] == "off"


def _noisy(refusal, compliance, update, update_se, safety_se=0.0):
    return {
        "harmful_refusal": (refusal, safety_se),
        "benign_compliance": (compliance, 0.0),
        "update_accuracy": (update, update_se),
        "harmful_forgetting": (1.0 - refusal, safety_se),
        "benign_forgetting": (1.0 - compliance, 0.0),
    }


def test_a_point_ahead_only_within_one_standard_error_is_tied_not_on_the_frontier():
    """The sweep's A-GEM and EWC (review of #35): A-GEM learns 0.297 ± 0.025 against EWC's 0.292 ± 0.073 and keeps
    less safety (0.866 against 1.0). On means A-GEM is on the frontier; EWC is within one standard error of
    dominating it (0.292 + sqrt(0.025² + 0.073²) >= 0.297), so A-GEM is tied. A point that some other beats on both
    axes by more than one s.e. on one of them is off; one no other comes within one s.e. of beating is on."""
    summary = {
        "ewc": _noisy(1.0, 1.0, 0.292, 0.073),
        "agem": _noisy(0.866, 0.921, 0.297, 0.025, 0.037),
        "ewc_lambda_2e5": _noisy(1.0, 1.0, 0.282, 0.020),  # beaten by EWC on means, by less than one s.e.
        "sft": _noisy(0.004, 1.0, 0.250, 0.036, 0.004),  # beaten by EWC by 0.996 of safety: off
        "dft": _noisy(0.294, 1.0, 0.000, 0.000, 0.020),  # beaten by EWC on both axes
        "learns_most": _noisy(0.0, 1.0, 0.452, 0.068),  # nothing comes within one s.e. of its update accuracy
    }
    assert frontier_status(summary) == {
        "ewc": "frontier",
        "agem": "tied",
        "ewc_lambda_2e5": "tied",
        "sft": "off",
        "dft": "off",
        "learns_most": "frontier",
    }
    # a single seed has no standard error: the plain Pareto frontier of the means
    single = {name: {k: (v[0], math.nan) for k, v in stats.items()} for name, stats in summary.items()}
    assert frontier_status(single) == {
        "ewc": "frontier",
        "agem": "frontier",
        "ewc_lambda_2e5": "off",
        "sft": "off",
        "dft": "off",
        "learns_most": "frontier",
    }
    table = markdown_table(
        {
            "base": {"test": dict.fromkeys(("harmful_refusal", "benign_compliance", "update_accuracy"), 1.0)},
            "seeds": [0],
        },
        summary,
    )
    assert "| agem ~ |" in table and "| ewc * |" in table and "| sft |" in table


def _run(validation: tuple, test: tuple) -> dict:
    keys = ("harmful_refusal", "benign_compliance", "update_accuracy")
    return {"validation": dict(zip(keys, validation)), "test": dict(zip(keys, test))}


def test_the_sweep_chooses_on_validation_and_never_reads_test(tmp_path):
    """#35: every choice of the sweep (each method's configuration, `sft_tuned`, `recommended`) reads the validation
    scores and base alone. Here test (runs and base) would choose otherwise for `sft_tuned`, `recommended` and two of the
    three per-method choices; test scores replaced by NaN change nothing; the report gives the validation table, then
    the chosen configurations' test scores beside the test base."""
    base = {"harmful_refusal": 1.0, "benign_compliance": 1.0, "update_accuracy": 0.0}
    # read against the test base, every run would keep safety
    test_base = {"harmful_refusal": 0.2, "benign_compliance": 0.2, "update_accuracy": 0.0}
    runs = {
        # learns most on validation (plain SFT: sft_tuned), forgets refusals
        "sft_high_lr": {"0": _run((0.5, 1.0, 0.40), (1.0, 1.0, 0.1))},
        # keeps safety on validation, learns little there; on test it would learn most
        "sft_high_lr[learning_rate=0.0003]": {"0": _run((1.0, 1.0, 0.10), (1.0, 1.0, 0.9))},
        # keeps safety and learns on validation (recommended); forgets on test
        "ewc_empirical": {"0": _run((1.0, 0.96, 0.30), (0.2, 0.2, 0.0))},
        # below 0.95 of the base's refusals on validation, the best of all on test
        "ewc_empirical[ewc_lambda=20000]": {"0": _run((0.94, 1.0, 0.35), (1.0, 1.0, 0.95))},
        # keeps neither side on validation in any configuration: the one that keeps the weaker side best
        "lwf": {"0": _run((0.5, 0.9, 0.2), (1.0, 1.0, 0.9))},
        "lwf[distill_weight=10.0]": {"0": _run((0.7, 0.6, 0.1), (1.0, 1.0, 0.1))},
    }
    results = {
        "base": {"validation": base, "test": test_base},
        "runs": runs,
        "seeds": [0],
        "max_steps": None,
        "splits": ["validation", "test"],
    }
    expected = {
        "per_method": {
            "sft_high_lr": "sft_high_lr[learning_rate=0.0003]",
            "ewc_empirical": "ewc_empirical",
            "lwf": "lwf[distill_weight=10.0]",
        },
        "sft_tuned": "sft_high_lr",
        "recommended": "ewc_empirical",
    }
    selection = select_on_validation(results)
    assert {key: selection[key] for key in expected} == expected
    blind = {
        **results,
        "base": {"validation": base, "test": dict.fromkeys(base, math.nan)},
        "runs": {n: {"0": {**r["0"], "test": dict.fromkeys(base, math.nan)}} for n, r in runs.items()},
    }
    assert {key: select_on_validation(blind)[key] for key in expected} == expected

    files = write_report(results, tmp_path, sweep=True)
    assert json.loads(files["selection"].read_text()) == selection
    table = files["table"].read_text()
    validation_table, test_table = table.split("Their scores on test:")
    assert "The validation split" in validation_table and "The test split" in test_table
    assert "| base | 1.000 | 1.000 | 0.000 |" in validation_table and "| base | 0.200 | 0.200 | 0.000 |" in test_table
    assert "| ewc_empirical[ewc_lambda=20000] * | 0.940 | 1.000 | 0.350 |" in validation_table  # on its frontier
    # the chosen four, with their test scores (ewc_empirical forgets on test, and the table says so)
    assert "| ewc_empirical | 0.200 | 0.200 | 0.000 |" in test_table
    assert "ewc_lambda=20000" not in test_table and test_table.count("\n| ") == 6  # header, base, the 4 chosen
    with pytest.raises(ValueError, match="validation"):
        write_report({**results, "splits": ["test"]}, tmp_path, sweep=True)


def test_sweep_expands_each_grid_and_keeps_the_methods_own_point(tmp_path):
    """Every combination of a method's grid is a method of its own, named by what differs from the recipe; the
    combination equal to the recipe is the method itself, so its cached runs count; methods without a grid stay."""
    recipes = REPO / "recipes" / "tiny"
    methods = check_methods(["sft_high_lr", "ewc_empirical", "sft_low_lr"], recipes)
    grids = {"sft_high_lr": {"learning_rate": [3e-4, 1e-3]}, "ewc_empirical": {"ewc_lambda": [5e4, 2e5]}}
    swept = sweep_methods(methods, recipes, grids)
    assert [m.name for m in swept] == [
        "sft_high_lr[learning_rate=0.0003]",
        "sft_high_lr",
        "ewc_empirical",
        "ewc_empirical[ewc_lambda=200000]",
        "sft_low_lr",
    ]
    assert swept[0].overrides == {"learning_rate": 3e-4} and swept[1] is methods[0]
    assert swept[3].overrides == {"ewc_lambda": 2e5} and swept[3].recipe == methods[1].recipe


def test_methods_run_after_the_model_they_start_from():
    ordered = [m.name for m in check_methods(["grpo", "sft_high_lr"], REPO / "recipes" / "tiny")]
    assert ordered == ["sft_low_lr", "grpo", "sft_high_lr"]
    assert all((REPO / "recipes" / "tiny" / m.recipe).is_file() for m in METHODS.values())
    with pytest.raises(ValueError, match="unknown method"):
        check_methods(["nope"], REPO / "recipes" / "tiny")


@pytest.mark.parametrize("world_name", sorted(WORLDS))
def test_every_worlds_methods_and_quick_methods_resolve_to_recipes(world_name):
    """Each world's full and quick method lists run in an order where every method follows the one it starts from,
    and name recipes of that world that exist."""
    methods, quick, recipes = WORLDS[world_name]
    for names in (list(methods), list(quick)):
        ordered = [m.name for m in check_methods(names, REPO / recipes, methods)]
        assert set(names) <= set(ordered)
        for index, name in enumerate(ordered):
            start = methods[name].start_from
            assert start is None or start in ordered[:index]


def test_quick_comparison_end_to_end(world, tmp_path):
    """`compare --quick` trains each quick method through its recipe, scores it and writes the report; a second
    call resumes from the per-run scores instead of training again."""
    command = [sys.executable, "-m", "open_r1.testbed", "compare", "--quick", "--root", str(world.root)]
    first = run_cli([*command, "--output", str(tmp_path)]).stdout
    assert "[4/4] ewc_empirical seed 0:" in first
    report = json.loads((tmp_path / "scores.json").read_text())
    assert list(report["runs"]) == ["sft_high_lr", "sft_low_lr", "replay_20", "ewc_empirical"]
    summary = report["summary"]["test"]
    # The testbed is built so that the problem exists: 20 steps at lr 1e-3 already cost harmful refusals, while
    # the low rate and EWC keep them.
    assert summary["sft_high_lr"]["harmful_forgetting"][0] >= 0.1
    assert summary["sft_high_lr"]["harmful_forgetting"][0] > summary["sft_low_lr"]["harmful_forgetting"][0]
    assert summary["ewc_empirical"]["harmful_forgetting"][0] < summary["sft_high_lr"]["harmful_forgetting"][0]
    assert (tmp_path / "table.md").read_text().count("\n| ") == 5

    from PIL import Image

    with Image.open(tmp_path / "pareto.png") as image:
        assert image.size[0] > 500 and image.size[1] > 400

    second = run_cli([*command, "--output", str(tmp_path)]).stdout
    assert second.count(": cached") == 4
    assert json.loads((tmp_path / "scores.json").read_text())["runs"] == report["runs"]

    # `--splits test`: runs scored on both splits are reused; a new run is scored (and reported) on test alone.
    test_only = [*command, "--splits", "test", "--methods", "sft_low_lr"]
    assert "sft_low_lr seed 0: cached" in run_cli([*test_only, "--output", str(tmp_path)]).stdout
    run_cli([*test_only, "--output", str(tmp_path / "test_only")])
    alone = json.loads((tmp_path / "test_only" / "scores.json").read_text())
    assert alone["splits"] == ["test"] and list(alone["runs"]["sft_low_lr"]["0"]) == ["test"]
    assert alone["runs"]["sft_low_lr"]["0"]["test"] == report["runs"]["sft_low_lr"]["0"]["test"]
    # Asked later for validation too, that run is scored there, not trained again.
    both = run_cli([*command, "--methods", "sft_low_lr", "--output", str(tmp_path / "test_only")]).stdout
    assert "sft_low_lr seed 0: cached, scored on validation" in both
    again = json.loads((tmp_path / "test_only" / "scores.json").read_text())["runs"]["sft_low_lr"]["0"]
    assert again == report["runs"]["sft_low_lr"]["0"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for splits, named in ((["--sweep", "--splits", "test"], "validation"), (["--splits", "validation"], "test")):
        refused = subprocess.run([*command, *splits], cwd=REPO, env=env, capture_output=True, text=True)
        assert refused.returncode == 2 and f"--splits must include {named}" in refused.stderr

    # WiSE-FT starts from the cached sft_high_lr run: only the interpolation is new.
    wise_ft = run_cli([*command, "--methods", "wise_ft", "--output", str(tmp_path)]).stdout
    assert "sft_high_lr seed 0: cached" in wise_ft and "wise_ft seed 0: cached" not in wise_ft
    # A start whose record was lost is trained again: what starts from it is made again too.
    lost = tmp_path / "lost_record"
    shutil.copytree(tmp_path / "runs", lost / "runs")
    (lost / "runs" / "sft_high_lr" / "seed0" / "scores.json").unlink()
    again = run_cli([*command, "--methods", "wise_ft", "--output", str(lost)]).stdout
    assert "sft_high_lr seed 0: cached" not in again and "wise_ft seed 0: cached" not in again

    # A recipe edited after its runs: that method is trained again, and so is what starts from it (WiSE-FT, whose
    # own recipe did not change); the others (same recipe content, even from another directory) stay cached.
    edited = tmp_path / "edited_recipes"
    shutil.copytree(REPO / "recipes" / "tiny", edited)
    recipe = edited / METHODS["sft_high_lr"].recipe
    recipe.write_text(recipe.read_text().replace("learning_rate: 1.0e-3", "learning_rate: 2.0e-3"))
    assert "2.0e-3" in recipe.read_text()
    output = tmp_path / "edited_output"  # a copy of the cached runs, so the check below starts from the originals
    shutil.copytree(tmp_path / "runs", output / "runs")
    methods = ["--methods", "wise_ft", "sft_low_lr", "--recipes", str(edited), "--output", str(output)]
    fourth = run_cli([*command, *methods]).stdout
    assert "sft_low_lr seed 0: cached" in fourth and "sft_high_lr seed 0: cached" not in fourth
    assert "wise_ft seed 0: cached" not in fourth and "wise_ft seed 0:" in fourth

    # The same runs against another world (here: the same files under a world.json of another seed) are not reused.
    other = tmp_path / "other_world"
    other.mkdir()
    for entry in world.root.iterdir():
        if entry.name != "world.json":
            (other / entry.name).symlink_to(entry)
    manifest = json.loads(world.manifest.read_text())
    manifest["config"]["seed"] += 1
    (other / "world.json").write_text(json.dumps(manifest))
    third = [sys.executable, "-m", "open_r1.testbed", "compare", "--quick", "--root", str(other)]
    rerun = run_cli([*third, "--methods", "sft_high_lr", "--output", str(tmp_path)]).stdout
    assert ": cached" not in rerun and "[1/1] sft_high_lr seed 0:" in rerun

    # The same config built again with another base (the weights depend on the CPU's kernels): not reused either.
    rebuild = json.loads(world.manifest.read_text())
    rebuild["build"] = {**rebuild.get("build", {}), "base_model_sha256": "0" * 64}
    (other / "world.json").write_text(json.dumps(rebuild))
    rebuilt = run_cli([*third, "--methods", "sft_low_lr", "--output", str(tmp_path)]).stdout
    assert ": cached" not in rebuilt and "[1/1] sft_low_lr seed 0:" in rebuilt


def test_a_world_records_what_its_base_was_built_with(tmp_path, monkeypatch):
    """world.json names the base's weights (sha256, as sha256sum gives it) and the torch and CPU kernels that
    trained them: the same seed and config give other weights on another kind of CPU, and a table is only comparable
    within one build. (The base's training is skipped here: the init model stands in for it.)"""
    import hashlib

    import torch

    from open_r1.testbed import WorldConfig, build_world
    from open_r1.testbed import world as world_module

    def untrained_base(config, paths, rows):
        shutil.copytree(paths.init_model, paths.base_model)

    monkeypatch.setattr(world_module, "train_base_model", untrained_base)
    built = build_world(tmp_path / "world", WorldConfig.preset("small"), score=False)
    build = json.loads(built.manifest.read_text())["build"]
    weights = (built.base_model / "model.safetensors").read_bytes()
    assert build["base_model_sha256"] == hashlib.sha256(weights).hexdigest()
    assert build["torch"] == torch.__version__ and build["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_a_comparison_without_the_run_a_method_starts_from_fails_before_any_run(tmp_path):
    """A --sweep grid that leaves out a start method's own settings drops that method: the comparison says which
    methods lost their start before it reads the world or trains anything."""
    wise_ft = METHODS["wise_ft"]
    with pytest.raises(ValueError, match="'wise_ft': 'sft_high_lr'"):
        run_comparison(WorldPaths(tmp_path / "no_world"), tmp_path, [wise_ft], [0], REPO / "recipes" / "tiny")


def test_a_runs_cache_key_names_interpolation_only_when_set():
    """Runs cached before `interpolates` existed keep their key (a plain method's key has no such field); an
    interpolating method's key says so, so it never reuses a trained run's scores."""
    assert "interpolates" not in method_spec(METHODS["sft_high_lr"])
    assert method_spec(METHODS["wise_ft"])["interpolates"] is True
    with pytest.raises(ValueError, match="start_from must be trained from the base"):
        check_methods(["wise_ft"], REPO / "recipes" / "tiny", {**METHODS, "sft_high_lr": METHODS["grpo"]})


def test_plot_labels_do_not_overlap_and_unnamed_points_are_numbered(tmp_path):
    """Two labels for one spot go to different places; a sweep-sized plot names the frontier, its ties and the named
    points, and numbers the others (listed beside the plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from open_r1.eval import plots

    fig, ax = plt.subplots()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    renderer = fig.canvas.get_renderer()
    first = plots._place(ax, "sft_high_lr[learning_rate=0.0003]", (0.5, 0.5), [], renderer, fontsize=8)
    second = plots._place(ax, "ewc_empirical[ewc_lambda=20000]", (0.5, 0.5), [first], renderer, fontsize=8)
    assert not first.overlaps(second)
    plt.close(fig)

    points = {
        f"m{i}": {"x": (i / 20, 0.01), "y": (1 - i / 40, 0.02), "c": (1.0 if i % 2 else 0.85, 0.0)} for i in range(15)
    }
    status = {name: "off" for name in points} | {"m14": "frontier", "m13": "tied"}
    captured = []
    real_text = matplotlib.axes.Axes.text
    matplotlib.axes.Axes.text = lambda self, *a, **k: captured.append(a[2]) or real_text(self, *a, **k)
    try:
        plots.learning_vs_forgetting_plot(points, tmp_path / "p.png", "x", ("y",), "c", "t", status, named=("m0",))
    finally:
        matplotlib.axes.Axes.text = real_text
    listing = next(text for text in captured if "\n" in text).splitlines()
    assert [line.split()[1] for line in listing] == [f"m{i}" for i in range(1, 13)]
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_a_second_comparison_on_one_output_folder_stops_before_any_run(world, tmp_path):
    """Two comparisons on one --output deleted and retrained each other's runs (seen on the SmolLM2 world): the
    second stops naming the first's pid, before it trains or deletes anything."""
    output = tmp_path / "compare"
    output.mkdir()
    # The first comparison's lock, taken as the lock file's own protocol (flock, holder's name inside), not with the
    # code under test.
    hold = (
        "import fcntl, os, sys, time; handle = open(sys.argv[1], 'a+'); fcntl.flock(handle, fcntl.LOCK_EX); "
        "handle.write(f'host test, pid {os.getpid()}'); handle.flush(); time.sleep(600)"
    )
    lock = output / "_open_r1.lock"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(lock)])
    try:
        deadline = time.time() + 60
        while not (lock.exists() and lock.read_text()):
            assert holder.poll() is None and time.time() < deadline, "the holder did not take the lock"
            time.sleep(0.1)
        command = [sys.executable, "-m", "open_r1.testbed", "compare", "--quick", "--root", str(world.root)]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        second = subprocess.run(
            [*command, "--methods", "sft_low_lr", "--max-steps", "1", "--output", str(output)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode != 0, second.stdout[-2000:]
        assert f"pid {holder.pid}" in second.stderr and "--output" in second.stderr
        assert not (output / "runs").exists()
    finally:
        holder.kill()
        holder.wait()

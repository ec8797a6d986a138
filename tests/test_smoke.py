"""Every versioned recipe runs for real on CPU stand-ins with its real datasets' schemas: train, save, resume."""

import subprocess
import sys

import pytest

from open_r1.recipes.reading import recipe_files
from open_r1.recipes.smoke import STAND_INS, smoke

from .conftest import REPO


VERSIONED = REPO / "recipes/meta-llama"


def test_every_versioned_recipe_smoke_runs(tmp_path):
    """`python -m open_r1.recipes smoke recipes/meta-llama --processes 1`: every recipe trains 2 steps, saves,
    resumes and trains a third, through its entry point (one process here; the next test runs the accelerate
    configs)."""
    result = subprocess.run(
        [sys.executable, "-m", "open_r1.recipes", "smoke", str(VERSIONED), "--processes", "1"]
        + ["--workdir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"},
    )
    ok = [line for line in result.stdout.splitlines() if line.startswith("ok ")]
    assert result.returncode == 0 and len(ok) == len(recipe_files([str(VERSIONED)])), result.stdout[-3000:]


@pytest.mark.parametrize(
    "recipe, accelerate_config",
    [
        ("sft/config_distill_v00.14.yaml", "zero3.yaml"),  # EWC + replay + EMA on ZeRO-3 partitions
        ("grpo/config_grpo_v00.04.yaml", "zero2.yaml"),  # GRPO + EWC, the loss-term penalty of ZeRO-1/2
    ],
)
def test_smoke_under_an_accelerate_config_on_two_processes(tmp_path, recipe, accelerate_config):
    smoke(
        VERSIONED / "Llama-3.1-8B-Instruct" / recipe,
        tmp_path,
        REPO / "recipes/accelerate_configs" / accelerate_config,
        processes=2,
    )


def test_only_an_abort_after_every_rank_finished_passes_as_an_exit_abort():
    """CI's red run (stop 39): rank 1 of a ZeRO-3 smoke run aborted as it exited (EXIT_ABORT), after the run had saved
    everything, and the smoke run failed. Such an abort passes when every rank printed FINISHED (past the final
    barrier); an abort before a rank got there, or any other failure, still fails."""
    from open_r1.recipes.smoke import _error_lines
    from open_r1.utils.run_utils import EXIT_ABORT, FINISHED, aborted_after_finishing

    finished = [FINISHED.format(rank=rank, world=2) for rank in (0, 1)]
    assert aborted_after_finishing("\n".join([*finished, EXIT_ABORT]), 2)
    assert not aborted_after_finishing("\n".join([finished[0], EXIT_ABORT]), 2)  # rank 1 had not saved
    assert not aborted_after_finishing("\n".join([*finished, "RuntimeError: rank 1 lost"]), 2)
    # a failure's message names the abort (the red run's message was a cut line of the launcher's summary)
    assert EXIT_ABORT in _error_lines(f"warnings\n{EXIT_ABORT}\nE1206 failed (exitcode: -6) local_rank: 1")


def test_broken_recipes_fail_the_smoke_run_with_a_clear_message(tmp_path, monkeypatch):
    """Assistant-only loss with the stock Llama-3.1 template (no `{% generation %}` markers), and a replay set
    without the chats replay mixes, stop with what is wrong."""
    recipe = (VERSIONED / "Llama-3.1-8B-Instruct/sft/config_distill_v00.00.yaml").read_text()
    broken = tmp_path / "config_distill_v00.00.yaml"
    broken.write_text(recipe.replace("bf16: true", "bf16: true\nassistant_only_loss: true"))
    with pytest.raises(RuntimeError, match=r"not training-compatible \(missing .*`\{% generation %\}` markers\)"):
        smoke(broken, tmp_path / "markers", processes=1)

    retain_id = "Neelectric/wildguardmix_Llama-3.1-8B-Instruct_4096toks"
    without_chats = STAND_INS[retain_id]
    monkeypatch.setitem(STAND_INS, retain_id, lambda i: {k: v for k, v in without_chats(i).items() if k != "messages"})
    with pytest.raises(RuntimeError, match=r"`retain_dataset_id` .* has no column \['messages'\]"):
        smoke(VERSIONED / "Llama-3.1-8B-Instruct/sft/config_distill_v00.02.yaml", tmp_path / "replay", processes=1)

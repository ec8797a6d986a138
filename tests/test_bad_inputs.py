"""Bad data and bad values fail before the model loads, naming the dataset, split, row and column (or the key)."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, DatasetDict
from trl import ModelConfig, TrlParser

from open_r1 import grpo, sft
from open_r1.configs import GRPOConfig, GRPOScriptArguments, ScriptArguments, SFTConfig
from open_r1.recipes.check import check_recipe
from open_r1.utils.checkpoints import checkpoint_problems

from .conftest import REPO, world_args


CHAT = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "\\boxed{4}"}]


class _ModelLoaded(Exception):
    pass


def _fail_before_the_model(monkeypatch, entry, recipe, cli, error, match):
    """Run the entry point's `main` on the tiny recipe + `cli`; it must stop with `error` matching `match` before
    `get_model` is called, leaving no `output_dir` behind. Returns the seconds it took."""

    def load_model(*args, **kwargs):
        raise _ModelLoaded

    monkeypatch.setattr(entry, "get_model", load_model)
    classes = (
        (GRPOScriptArguments, GRPOConfig, ModelConfig) if entry is grpo else (ScriptArguments, SFTConfig, ModelConfig)
    )
    args = TrlParser(classes).parse_args_and_config(["--config", recipe, *cli])
    start = time.perf_counter()
    with pytest.raises(error, match=match):
        entry.main(*args)
    seconds = time.perf_counter() - start
    assert not Path(args[1].output_dir).exists(), "a run stopped by bad input left its output_dir behind"
    return seconds


def _jsonl(path, rows, raw: bytes = b""):
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows) + raw)
    return str(path)


SFT_RECIPE, GRPO_RECIPE = "recipes/tiny/sft/config_sft.yaml", "recipes/tiny/grpo/config_grpo.yaml"


@pytest.mark.parametrize(
    "case, match",
    [
        ("invalid UTF-8", r"`dataset_name`: '.*bad.jsonl' line 3 is not valid UTF-8"),
        ("user turn only", r"split 'train', row 1, column `messages`: the chat does not end with an assistant reply"),
        ("empty file", r"`dataset_name`: the data file '.*bad.jsonl' is empty"),
        ("empty split", r"`dataset_name`: '.*empty' split 'train' has no rows"),
        ("no chats", r"has none of SFT's formats"),
    ],
)
def test_bad_sft_data_fails_before_the_model_loads(world, tmp_path, monkeypatch, case, match):
    path = tmp_path / "bad.jsonl"
    if case == "invalid UTF-8":
        data = _jsonl(path, [{"messages": CHAT}] * 2, b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}\n')
    elif case == "user turn only":
        data = _jsonl(path, [{"messages": CHAT}, {"messages": CHAT[:1]}])
    elif case == "empty file":
        path.write_bytes(b"")
        data = str(path)
    elif case == "empty split":
        DatasetDict({"train": Dataset.from_list([{"messages": CHAT}]).select([])}).save_to_disk(tmp_path / "empty")
        data = str(tmp_path / "empty")
    else:
        data = _jsonl(path, [{"question": "2 + 2?"}])
    cli = [*world_args(world, tmp_path / "out"), "--dataset_name", data]
    seconds = _fail_before_the_model(monkeypatch, sft, SFT_RECIPE, cli, ValueError, match)
    assert seconds < 10, seconds


def test_a_retain_chat_without_a_reply_fails_before_the_model_loads(world, tmp_path, monkeypatch):
    retain = _jsonl(tmp_path / "retain.jsonl", [{"messages": CHAT}, {"messages": CHAT}, {"messages": CHAT[:1]}])
    cli = [*world_args(world, tmp_path / "out"), "--replay_ratio", "0.1", "--retain_dataset_id", retain]
    match = r"`retain_dataset_id` '.*retain.jsonl' split 'train', row 2, column `messages`"
    _fail_before_the_model(monkeypatch, sft, SFT_RECIPE, cli, ValueError, match)


@pytest.mark.parametrize(
    "rows, rewards, match",
    [
        ([{"problem": "2 + 2?"}], ["accuracy"], r"has no column \['solution'\] \(the `accuracy` reward reads it\)"),
        ([{"problem": ""}], ["format"], r"row 0, column `problem`: the prompt is empty"),
        (
            [{"problem": "Name a colour", "keywords": "red"}],
            ["keyword"],
            r"row 0, column `keywords` \(the `keyword` reward\): expected a list of strings, got str",
        ),
    ],
    ids=["no solution column", "empty prompt", "keywords a string"],
)
def test_bad_grpo_data_fails_before_the_model_loads(world, tmp_path, monkeypatch, rows, rewards, match):
    data = _jsonl(tmp_path / "prompts.jsonl", rows)
    cli = [*world_args(world, tmp_path / "out"), "--dataset_name", data, "--dataset_prompt_column", "problem"]
    cli += ["--reward_funcs", *rewards]
    cli += ["--reward_weights", *["1.0"] * len(rewards)]
    _fail_before_the_model(monkeypatch, grpo, GRPO_RECIPE, cli, ValueError, match)


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"per_device_train_batch_size": 0}, "`per_device_train_batch_size` must be >= 1, got 0"),
        ({"gradient_accumulation_steps": 0}, "`gradient_accumulation_steps` must be >= 1, got 0"),
        ({"learning_rate": -1.0}, "`learning_rate` must be >= 0, got -1.0"),
        ({"max_length": 0}, "`max_length` must be >= 1 (or unset), got 0"),
        ({"dtype": "float99"}, "`dtype`: unknown torch dtype 'float99'"),
        ({"report_to": None}, "`report_to` is empty"),
        ({"use_ewc": True, "retain_dataset_id": "x/y", "fisher_kind": "bogus"}, "`fisher_kind` must be one of"),
        ({"replay_mode": "bogus"}, "`replay_mode` must be one of"),
        ({"wise_ft_alpha": 0.0}, "`wise_ft_alpha` must be in (0, 1], got 0.0"),
        ({"wise_ft_alpha": 1.5}, "`wise_ft_alpha` must be in (0, 1], got 1.5"),
        ({"distill_weight": -1.0}, "`distill_weight` must be >= 0, got -1.0"),
        ({"use_agem": True}, "`use_agem` needs `retain_dataset_id`"),
    ],
)
def test_bad_values_are_reported_by_the_checker_before_any_compute(tmp_path, changes, problem):
    recipe = yaml.safe_load((REPO / SFT_RECIPE).read_text())
    path = tmp_path / "config_bad.yaml"
    path.write_text(yaml.safe_dump({**recipe, **changes}))
    problems = check_recipe(path, allow_missing=("data/",))
    assert any(problem in p for p in problems), problems


def _raises_on_the_third(completions, **kwargs):
    if len(completions) > 2 or "third" in str(completions):
        raise ZeroDivisionError("division by zero")
    return [1.0] * len(completions)


def test_a_raising_user_reward_is_named_with_its_completion_or_scored_none():
    from open_r1.rewards import guarded_reward

    completions = ["first", "second", "third"]
    raising = guarded_reward(_raises_on_the_third, "my_reward", "raise")
    with pytest.raises(RuntimeError, match=r"Reward `my_reward` raised on completion 2: ZeroDivisionError"):
        raising(completions=completions, solution=["1", "2", "3"])
    logged = {}
    lenient = guarded_reward(_raises_on_the_third, "my_reward", "none")
    scores = lenient(completions=completions, solution=["1", "2", "3"], log_metric=logged.__setitem__)
    assert scores == [1.0, 1.0, None] and logged == {"rewards/my_reward/errors": 1.0}


def test_compare_refuses_a_negative_seed_before_making_any_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "open_r1.testbed", "compare", "--output", str(tmp_path / "cmp"), "--seeds", "-1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2 and "a seed must be in [0, 2**32), got -1" in result.stderr
    assert not (tmp_path / "cmp").exists()


def _sft_cli(world, recipe_text, tmp_path, *cli):
    """`python src/open_r1/sft.py` on `recipe_text` (pointed at the test world): the real entry point's process."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(recipe_text)
    command = [sys.executable, "src/open_r1/sft.py", "--config", str(recipe), *world_args(world, None), *cli]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda t: t + "learning_rate: 1.0e-4\n",
            r"line \d+: `learning_rate` appears twice in one mapping \(first at",
        ),
        (lambda t: ALIAS_BOMB + t, r"its YAML aliases expand to [\d,]+ values"),
        (
            lambda t: t.replace("output_dir: data/tiny/sft", "output_dir: TMP/c04-${VERSION}"),
            r"Unrendered placeholders in the recipe \(output_dir: \$\{VERSION\}\)",
        ),
    ],
    ids=["duplicate key", "alias bomb", "unrendered ${VERSION}"],
)
def test_a_recipe_the_yaml_reader_would_misread_stops_the_entry_point_and_the_checker(world, tmp_path, edit, match):
    """A duplicate key (the last value won silently), a 1 KB alias bomb (5 GB and a MemoryError after 75 s) and a
    `${VERSION}` left unrendered (a folder literally named `c04-${VERSION}` that later recipes resumed from) stop
    `sft.py` before anything loads, and `recipes check` reports the first two (#31 items 4, 6)."""
    text = edit((REPO / SFT_RECIPE).read_text()).replace("TMP/", f"{tmp_path}/")
    unrendered = "${" in text
    start = time.perf_counter()
    result = _sft_cli(world, text, tmp_path, *([] if unrendered else ["--output_dir", str(tmp_path / "out")]))
    assert result.returncode != 0 and re.search(match, result.stderr), result.stderr[-3000:]
    assert time.perf_counter() - start < 60 and "Loading weights" not in result.stderr
    assert not list(tmp_path.glob("c04-*"))
    if not unrendered:  # the checker renders placeholders itself and names sweep ones
        (tmp_path / "config_x.yaml").write_text(text)
        problems = check_recipe(tmp_path / "config_x.yaml", allow_missing=("data/",))
        assert any(re.search(match, p) for p in problems), problems


def _all_finite(path):
    from safetensors.torch import load_file

    return all(t.isfinite().all() for t in load_file(path).values())


@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_a_diverging_run_never_writes_non_finite_weights(world, tmp_path, mode):
    """At learning rate 1e6 the gradient is NaN from step 2: the run stops before that step with a message naming it
    (or, with `nonfinite_steps: skip`, skips such steps and says how many), every checkpoint and the final model are
    finite, and the newest finite checkpoint survives `save_total_limit: 1`. It exited 0 with NaN in 38 of 38 tensors
    of checkpoint-6 and of the final model, the last finite checkpoint rotated away (#31 item 1)."""
    out = tmp_path / "out"
    saving = ("--save_strategy", "steps", "--save_steps", "2", "--save_total_limit", "1", "--logging_steps", "1")
    diverging = ("--output_dir", str(out), "--learning_rate", "1e6", "--max_steps", "8", *saving)
    skip = ("--nonfinite_steps", "skip") if mode == "skip" else ()  # `stop` is the default
    result = _sft_cli(world, (REPO / SFT_RECIPE).read_text(), tmp_path, *diverging, *skip)
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert checkpoints and all(_all_finite(c / "model.safetensors") for c in checkpoints)
    if mode == "stop":
        assert result.returncode != 0 and re.search(r"Step \d+: the gradient is not finite", result.stderr)
        assert not (out / "model.safetensors").exists()
    else:
        assert result.returncode == 0, result.stderr[-3000:]
        assert _all_finite(out / "model.safetensors")
        history = json.loads((out / "trainer_state.json").read_text())["log_history"]
        assert max(e.get("nonfinite/skipped_steps", 0) for e in history) >= 1


def test_a_second_run_on_a_busy_output_dir_stops_naming_the_first(world, tmp_path):
    """Two runs started on one `output_dir`: the second stops before loading anything, naming the first run's host
    and pid, and the first is not disturbed (both exited 0 and every file was the second's). A folder that is a file
    is named too (#31 item 2)."""
    out = tmp_path / "out"
    recipe = (REPO / SFT_RECIPE).read_text()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    (tmp_path / "first").mkdir()
    (tmp_path / "first" / "recipe.yaml").write_text(recipe)
    first = subprocess.Popen(
        [
            sys.executable,
            "src/open_r1/sft.py",
            "--config",
            str(tmp_path / "first" / "recipe.yaml"),
            *world_args(world, out),
            "--max_steps",
            "100000",
            "--save_strategy",
            "no",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 90  # the first run holds the folder within seconds (the old code never did)
        while (
            not ((out / "_open_r1.lock").exists() and (out / "_open_r1.lock").read_text()) and time.time() < deadline
        ):
            assert first.poll() is None, "the first run stopped"
            time.sleep(0.2)
        second = _sft_cli(world, recipe, tmp_path, "--output_dir", str(out), "--max_steps", "2")
        assert second.returncode != 0, second.stderr[-2000:]
        assert f"pid {first.pid}" in second.stderr and "is in use by another run (host " in second.stderr
        assert "Loading weights" not in second.stderr and first.poll() is None
    finally:
        first.kill()
        first.wait()
    (tmp_path / "file").write_text("")
    result = _sft_cli(world, recipe, tmp_path, "--output_dir", str(tmp_path / "file"), "--max_steps", "2")
    assert result.returncode != 0 and "is a file, not a folder" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a lock file as root and runs as another uid")
def test_another_users_lock_file_is_named_not_a_permission_traceback():
    """A shared, group-writable `output_dir` whose lock file another user's run left behind: the run stops with the
    setting, the file and its owner named (it was a PermissionError traceback from `open`). Run as an unprivileged
    uid against a lock file of root's, as on a cluster where most users are not root."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="open_r1_shared_", dir="/tmp"))  # not pytest's 0700 folder
    try:
        folder.chmod(0o777)
        (folder / "_open_r1.lock").write_text("host other, pid 1, since 2026-12-01 00:00:00\n")
        (folder / "_open_r1.lock").chmod(0o644)
        probe = (
            # imported before the uid drops: the interpreter may live where only root reads
            "import os\nfrom open_r1.utils.run_utils import hold_output_dir\n"
            "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
            f"hold_output_dir({str(folder)!r})\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(folder)
    assert result.returncode != 0, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: `output_dir`: ") and "_open_r1.lock (owner root) is not writable" in last, (
        result.stderr
    )


def test_a_held_folder_deleted_and_made_again_in_one_process_is_locked_again(tmp_path):
    """A process holds each folder once; if the folder is deleted and made again (a notebook re-running a
    comparison, `compare` retraining a run), the new folder is locked too: a second process is stopped, naming this
    one (it was not: the held handle pointed at the deleted file)."""
    import fcntl

    from open_r1.utils.run_utils import LOCK_FILE, hold_output_dir

    folder = tmp_path / "run"
    hold_output_dir(str(folder))
    shutil.rmtree(folder)
    hold_output_dir(str(folder))
    assert (folder / LOCK_FILE).exists(), "the folder made again was not locked"
    with open(folder / LOCK_FILE) as other:  # another process's view: flock locks are per open file description
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert f"pid {os.getpid()}" in (folder / LOCK_FILE).read_text()


def test_a_resume_with_another_recipe_stops_naming_each_difference(world, tmp_path):
    """A restart whose recipe is not the checkpoint's run stops before the model loads, naming each key that differs:
    another learning rate (every new step logged the old rate while training_args.bin recorded the new one), another
    same-shape model (it continued the old run's checkpoint, exit 0), a method added. Training longer goes on (#31
    item 3)."""
    recipe = (REPO / SFT_RECIPE).read_text()
    out = tmp_path / "out"
    first = ("--output_dir", str(out), "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "2")
    assert _sft_cli(world, recipe, tmp_path, *first).returncode == 0
    other_model = tmp_path / "other_model"
    __import__("shutil").copytree(world.base_model, other_model)
    for change, named in (
        (("--learning_rate", "1e-5"), "`learning_rate`: 0.001 in the checkpoint, 1e-05 now"),
        (("--model_name_or_path", str(other_model)), "`model_name_or_path`: "),
        (("--use_ema", "true"), "`use_ema`: False in the checkpoint, True now"),
    ):
        result = _sft_cli(world, recipe, tmp_path, *first, *change)
        assert result.returncode != 0 and "a run with another recipe" in result.stderr, result.stderr[-2000:]
        assert named in result.stderr and "Loading weights" not in result.stderr
    # Training longer, logging, evaluating and speed settings may change.
    changes = (
        "--logging_steps",
        "2",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "4",
        "--dataloader_num_workers",
        "0",
    )
    longer = _sft_cli(world, recipe, tmp_path, *first[:2], "--max_steps", "4", *first[4:], *changes)
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 4


def test_a_replay_whose_rows_are_all_cut_away_stops_and_survivors_are_counted(world, tmp_path, caplog):
    """Retain chats whose prompt fills `max_length` lose every labelled token, and TRL drops them: with `replay_ratio
    0.2` the run trained on update rows alone, silently. Now the survivors of each source are logged, and a replay
    with none left stops naming `replay_ratio` and `max_length` (#31 item 5)."""

    def chats(prompts, path):
        turns = [
            [{"role": "user", "content": f"{p} {i}"}, {"role": "assistant", "content": "No."}]
            for i, p in enumerate(prompts)
        ]
        Dataset.from_dict({"messages": turns}).save_to_disk(str(path))
        return str(path)

    def run(retain):
        cli = ["--config", SFT_RECIPE, *world_args(world, tmp_path / "out"), "--retain_dataset_id", retain]
        cli += ["--replay_ratio", "0.2", "--max_length", "64", "--max_steps", "1", "--save_strategy", "no"]
        sft.main(*TrlParser((ScriptArguments, SFTConfig, ModelConfig)).parse_args_and_config(cli))

    long = " ".join(["please"] * 400)
    with pytest.raises(
        ValueError, match=r"`replay_ratio`: none of the 120 replayed retain rows survives.*`max_length` 64"
    ):
        run(chats([long] * 150, tmp_path / "long"))
    run(chats([long, "hi"] * 75, tmp_path / "half"))  # about half the replayed rows survive: a warning says how many
    survived = re.findall(r"after tokenisation: \d+ of 480 update rows, (\d+) of 120 replayed retain", caplog.text)
    assert len(survived) == 2 and 0 < int(survived[-1]) < 120


def test_every_row_cut_away_by_max_length_is_named(world, tmp_path):
    """`max_length` shorter than every prompt: TRL drops every row, and the run died in the sampler with
    `num_samples should be a positive integer value, but got num_samples=0`."""
    cli = ["--config", SFT_RECIPE, *world_args(world, tmp_path / "out"), "--max_length", "4", "--max_steps", "1"]
    args = TrlParser((ScriptArguments, SFTConfig, ModelConfig)).parse_args_and_config(cli)
    with pytest.raises(ValueError, match=r"No training row has a labelled token within `max_length` 4 .*all 600 were"):
        sft.main(*args)


def test_a_killed_launcher_does_not_leave_its_trainer_running(world, tmp_path):
    """SIGTERM to `accelerate launch` (a user's kill, some schedulers): the launcher exits and did not pass the signal
    on, so the trainer ran on as an orphan, writing checkpoints (and a restart beside it was two runs in one folder).
    Now the trainer sees its launcher gone at the next step, saves a checkpoint and stops, without a final model
    (#31 item 9)."""
    import signal

    import psutil

    from .conftest import accelerate_cmd

    out, log = tmp_path / "out", tmp_path / "log.txt"
    command = [*accelerate_cmd("--num_processes", "1", "--cpu"), "src/open_r1/sft.py", "--config", SFT_RECIPE]
    command += [*world_args(world, out), "--max_steps", "100000", "--logging_steps", "1", "--disable_tqdm", "true"]
    command += ["--save_strategy", "steps", "--save_steps", "100000"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with open(log, "w") as handle:
        launcher = subprocess.Popen(command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    trainer = None
    try:
        deadline = time.time() + 120
        while "'loss'" not in log.read_text():  # training has begun
            assert launcher.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        (trainer,) = psutil.Process(launcher.pid).children()
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(30)
        gone, alive = psutil.wait_procs([trainer], timeout=60)
        assert not alive, "the trainer runs on as an orphan"
    finally:
        if launcher.poll() is None:
            launcher.kill()
        if trainer is not None and trainer.is_running():
            trainer.kill()
    checkpoints = list(out.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and (checkpoints[0] / "trainer_state.json").exists()
    assert not (out / "model.safetensors").exists()  # not a finished run: a restart resumes the checkpoint
    assert "the process that launched this run" in log.read_text()


def test_migrate_names_a_bad_file_and_goes_on_with_the_others(tmp_path):
    """`migrate` on a folder with malformed YAML and a binary file beside good recipes: each bad one is named with
    its problem, the rest are migrated, and the exit status is 1 (a bare parser traceback without the file's name
    stopped the whole folder at the first)."""
    source = tmp_path / "in"
    source.mkdir()
    (source / "a_bad.yaml").write_text("model_name_or_path: x\n  learning_rate: : 1\n")
    (source / "b_binary.yaml").write_bytes(b"\x80\x81\xfe\xff" * 64)
    (source / "c_good.yaml").write_text((REPO / SFT_RECIPE).read_text())
    command = [sys.executable, "-m", "open_r1.recipes", "migrate", str(source), "--out", str(tmp_path / "out")]
    result = subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert re.search(r"a_bad.yaml: not migrated: .*line 2", result.stderr), result.stderr
    assert "b_binary.yaml: not migrated: UnicodeDecodeError" in result.stderr
    assert (tmp_path / "out" / "c_good.yaml").exists()


def test_a_retain_set_that_max_length_empties_is_named_with_the_reason(world, tmp_path):
    """EWC on a retain set whose prompts fill `max_length`: it said "the retain set ... is empty" although it has 32
    rows. Now the reason is named: no drawn row keeps an assistant token within `max_length`."""
    rows = [[{"role": "user", "content": " ".join(["please"] * 400)}, {"role": "assistant", "content": "No."}]] * 32
    Dataset.from_dict({"messages": rows}).save_to_disk(str(tmp_path / "retain"))
    cli = ["--config", "recipes/tiny/sft/config_ewc.yaml", *world_args(world, tmp_path / "out")]
    cli += ["--retain_dataset_id", str(tmp_path / "retain"), "--max_length", "64", "--max_steps", "1"]
    args = TrlParser((ScriptArguments, SFTConfig, ModelConfig)).parse_args_and_config(cli)
    with pytest.raises(
        ValueError, match=r"none of its 32 drawn rows has a labelled \(assistant\) token within `max_le"
    ):
        sft.main(*args)


def test_a_full_disk_during_a_save_is_named_and_loses_nothing(world, tmp_path):
    """A checkpoint that does not fit on the disk: torch said `enforce fail at inline_container.cc:672` or
    `basic_ios::clear: iostream error`. Now the run stops naming the file system, what it was writing and the newest
    complete checkpoint, which is still there (a 16 MB tmpfs holds one 11.5 MB checkpoint of the tiny model)."""
    out = tmp_path / "small_disk"
    out.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(out)]
    if os.geteuid() != 0 or not shutil.which("mount") or subprocess.run(mount).returncode:
        pytest.skip("needs root to mount a small file system")
    try:
        saving = ("--save_strategy", "steps", "--save_steps", "2", "--max_steps", "4")
        result = _sft_cli(world, (REPO / SFT_RECIPE).read_text(), tmp_path, "--output_dir", str(out), *saving)
        assert result.returncode != 0
        assert re.search(
            rf"No space left on the file system of {out} \(\d+ bytes free\) writing checkpoint-4", result.stderr
        )
        assert f"the newest complete checkpoint is {out / 'checkpoint-2'}" in result.stderr
        assert checkpoint_problems(str(out / "checkpoint-2")) == []
    finally:
        subprocess.run(["umount", str(out)])


def test_a_resume_onto_a_model_of_another_shape_names_the_checkpoint(world, tmp_path):
    """The model at the recipe's path was rebuilt with another shape after the checkpoint was written: a raw
    `size mismatch` traceback that never mentioned the checkpoint. Now the checkpoint and the mismatch are named."""
    from transformers import AutoConfig, AutoModelForCausalLM

    model_dir = tmp_path / "model"
    shutil.copytree(world.base_model, model_dir)
    first = ("--model_name_or_path", str(model_dir), "--output_dir", str(tmp_path / "out"), "--max_steps", "2")
    first += ("--save_strategy", "steps", "--save_steps", "2")
    recipe = (REPO / SFT_RECIPE).read_text()
    assert _sft_cli(world, recipe, tmp_path, *first).returncode == 0
    config = AutoConfig.from_pretrained(model_dir)
    config.intermediate_size *= 2
    AutoModelForCausalLM.from_config(config).save_pretrained(model_dir)
    result = _sft_cli(world, recipe, tmp_path, *first)
    assert result.returncode != 0
    assert re.search(
        r"Resuming from .*checkpoint-2: its weights do not fit the model \(.*size mismatch", result.stderr
    )

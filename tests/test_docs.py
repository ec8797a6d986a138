# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The README and docs/ say only what the code does: every command of their shell blocks names a Makefile target,
a module or script that exists, flags that program accepts (its `--help`, or for the training entry points the
recipe's fields), and repository files that exist; every relative link resolves; the README stays short.

The commands are checked, not run: the suite runs what they do end to end elsewhere (the demo, training, evaluation,
the comparison), and many need a GPU, the Hub or Slurm."""

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "recipes/README.md"]
# Programs the docs call that are not this project's (installers, logins, the shell's own).
EXTERNAL = {"uv", "pip", "huggingface-cli", "wandb", "source", "cd", "envsubst", "trl", "git", "bash", "pytest"}
SHELL_WORDS = {"for", "do", "done", "if", "then", "fi", "while", "export"}
# Entry points whose flags are recipe fields (HfArgumentParser), not an argparse --help.
RECIPE_SCRIPTS = {
    "src/open_r1/sft.py": "sft",
    "src/open_r1/grpo.py": "grpo",
    "src/open_r1/pass_rate_filtering.py": "pass_rate",
}


def shell_commands(page: Path) -> list[list[str]]:
    """Each command of the page's shell blocks as its words: comments dropped, continuations joined, split at `&&`,
    `;` and pipes, redirections left out."""
    commands = []
    for block in re.findall(r"```shell\n(.*?)```", page.read_text(), re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split, lexer.commenters = True, "#"
            command, words = [], list(lexer)
            while words:
                word = words.pop(0)
                if word in ("&&", "||", ";", "|", "&", "(", ")"):
                    commands.append(command) if command else None
                    command = []
                elif word in (">", ">>"):
                    words.pop(0) if words else None  # the file a redirection writes
                elif word == "<":
                    continue  # the file read is a word of the command: its path is checked
                else:
                    command.append(word)
            if command:
                commands.append(command)
    return commands


def _flags(tokens: list[str]) -> list[str]:
    return [token.split("=", 1)[0] for token in tokens if token.startswith("--")]


def _unknown(flags: list[str], text: str) -> list[str]:
    """The flags that `text` (a --help, a script) does not name as a whole option (`--allow-missing` is not
    `--allow-missing-packages`)."""
    return [flag for flag in flags if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]


@functools.cache
def _make_variables() -> set[str]:
    text = (REPO / "Makefile").read_text()
    used = set(re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", text))
    return used | set(re.findall(r"^([A-Z_][A-Z0-9_]*)\s*\??=", text, re.M))


@functools.cache
def _help(*program: str) -> str:
    done = subprocess.run([sys.executable, *program, "--help"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(program)} --help failed: {done.stderr[-1000:]}"
    return done.stdout


@functools.cache
def _make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))


def _check_repo_paths(tokens: list[str], where: str) -> None:
    for token in tokens:
        value = token.split("=", 1)[-1]
        if re.match(r"^(recipes|scripts|src|tests)/", value):
            assert (REPO / value).exists(), f"{where}: {value} does not exist"


def _check_script(script: str, args: list[str], where: str) -> None:
    assert (REPO / script).exists(), f"{where}: {script} does not exist"
    if script in RECIPE_SCRIPTS:
        from open_r1.recipes.reading import recipe_fields

        fields = recipe_fields(RECIPE_SCRIPTS[script]) | {"config"}
        unknown = [flag for flag in _flags(args) if flag[2:] not in fields]
        assert not unknown, f"{where}: {script} has no recipe field {unknown}"
    elif script.endswith(".py"):
        missing = _unknown(_flags(args), _help(script))
        assert not missing, f"{where}: {script} --help does not know {missing}"


def check_command(tokens: list[str], where: str) -> None:
    while tokens and re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):  # environment assignments
        tokens = tokens[1:]
    if not tokens or tokens[0] in EXTERNAL | SHELL_WORDS:
        _check_repo_paths(tokens, where)
        return
    program, args = tokens[0], tokens[1:]
    _check_repo_paths(args, where)
    if program == "make":
        targets = [a for a in args if "=" not in a and not a.startswith("-")]
        assert set(targets) <= _make_targets(), f"{where}: no Makefile target {set(targets) - _make_targets()}"
        variables = {a.split("=", 1)[0] for a in args if "=" in a}  # make ignores a variable it does not use
        assert variables <= _make_variables(), f"{where}: the Makefile uses no {variables - _make_variables()}"
    elif program in ("python", "python3") and args[:1] == ["-m"]:
        module, rest = args[1], args[2:]
        subcommand = [rest[0]] if rest and not rest[0].startswith("-") and not rest[0].endswith((".yaml", "/")) else []
        missing = _unknown(_flags(rest), _help("-m", module, *subcommand))
        assert not missing, f"{where}: python -m {module} {' '.join(subcommand)} --help does not know {missing}"
    elif program in ("python", "python3"):
        _check_script(args[0], args[1:], where)
    elif program == "accelerate":
        script = next(i for i, a in enumerate(args) if a.endswith(".py"))
        _check_script(args[script], args[script + 1 :], where)
    elif program == "sbatch":
        index = next(i for i, a in enumerate(args) if a.endswith(".slurm"))
        job = REPO / args[index]
        assert job.exists(), f"{where}: {args[index]} does not exist"
        missing = [flag for flag in _flags(args[index + 1 :]) if f"{flag})" not in job.read_text()]
        assert not missing, f"{where}: {args[index]} takes no {missing}"
    else:
        pytest.fail(f"{where}: a program this test does not know how to check ({program})")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_documented_command_names_what_exists(page):
    for command in shell_commands(page):
        check_command(command, f"{page.relative_to(REPO)}: `{' '.join(command)}`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
        if not re.match(r"^[a-z]+://", target):
            assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to missing {target}"


def test_the_readme_is_short_and_opens_with_its_two_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) < 250
    first_block = re.search(r"```shell\n(.*?)```", text, re.DOTALL).group(1)
    assert [line.split()[:2] for line in first_block.splitlines()] == [["make", "demo"], ["make", "test"]]


def test_a_renamed_flag_fails_the_check():
    """The check is not vacuous: a flag the program does not take, a missing target or a missing recipe fails it."""
    for command in (
        "python -m open_r1.recipes check recipes --no-such-flag",
        "python -m open_r1.recipes check recipes --allow-missing-package",  # a prefix of a real flag
        "make no-such-target",
        "make evaluate MAX_SAMPLE=2",
        "sbatch scripts/slurm/train.slurm --model m --accelerate zero3",
        "accelerate launch src/open_r1/sft.py --config recipes/tiny/sft/config_sft.yaml --no_such_field 1",
        "python src/open_r1/sft.py --config recipes/tiny/sft/config_missing.yaml",
    ):
        with pytest.raises(AssertionError):
            check_command(command.split(), "test")

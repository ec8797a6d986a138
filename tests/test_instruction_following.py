# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Instruction following scored by IFEval's own checkers (lighteval's), with NLTK's data from a PyPI wheel."""

import json

import pytest

from open_r1.eval.instruction_following import NLTK_RESOURCES, ensure_nltk_data, prompt_follows
from open_r1.eval.tasks import IFEVAL_FIXTURE


def test_nltk_data_comes_from_the_pinned_wheel_and_nltk_reads_it(tmp_path):
    """Extracted from llama-index-core's wheel (kept in data/wheels), checked by sha256: NLTK's English sentence
    model splits as punkt does, and the English stopword list is NLTK's (198 words in this release)."""
    import nltk

    directory = ensure_nltk_data(tmp_path / "nltk_data")
    assert all((directory / resource).exists() for resource in NLTK_RESOURCES)
    tokenizer = nltk.data.load("tokenizers/punkt/english.pickle")  # NLTK 3.9 reads punkt_tab for this name
    assert tokenizer.tokenize("Dr. Smith arrived at 5 p.m. on Monday. He left early.") == [
        "Dr. Smith arrived at 5 p.m. on Monday.",
        "He left early.",
    ]
    words = nltk.corpus.stopwords.words("english")
    assert len(words) == 198 and {"the", "and", "ourselves"} <= set(words)


# (instruction, its arguments, a reply that follows it, one that does not): each verdict is what the rule says.
CASES = [
    ("punctuation:no_comma", {}, "Tea is ready now.", "Tea, as ever, is ready."),
    ("change_case:english_lowercase", {}, "the kettle is on and the cups are out.", "The kettle is on."),
    ("startend:end_checker", {"end_phrase": "Any questions?"}, "Boil water.\nAny questions?", "Any questions? Boil."),
    ("startend:quotation", {}, '"A bakery called Crumbs"', "A bakery called Crumbs"),
    ("detectable_format:title", {}, "<<Rain>>\nIt falls.", "Rain\nIt falls."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two", "* one\n* two\n* three"),
    ("detectable_format:json_format", {}, '{"city": "Oslo"}', "city: Oslo"),
    ("keywords:existence", {"keywords": ["walnut"]}, "Made of walnut.", "Made of oak."),
    ("keywords:forbidden_words", {"forbidden_words": ["easy"]}, "It takes care.", "It is easy."),
    (
        "length_constraints:number_words",
        {"relation": "less than", "num_words": 4},
        "One two three.",
        "One two three four.",
    ),
    (
        "length_constraints:number_sentences",
        {"relation": "less than", "num_sentences": 2},
        "It heats.",
        "It heats. It cools.",
    ),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Thanks!\nP.S. See you.", "Thanks! See you."),
    ("combination:two_responses", {}, "Goldie\n******\nBubbles", "Goldie or Bubbles"),
]


@pytest.mark.parametrize("instruction, arguments, follows, breaks", CASES, ids=[case[0] for case in CASES])
def test_checkers_judge_replies_as_the_instruction_says(instruction, arguments, follows, breaks):
    assert prompt_follows("the prompt", follows, [instruction], [arguments])
    assert not prompt_follows("the prompt", breaks, [instruction], [arguments])


def test_a_prompt_follows_only_when_every_instruction_is_followed_and_the_reply_is_not_empty():
    both = ["punctuation:no_comma", "change_case:english_lowercase"]
    # (langdetect must also read the text as English: "all quiet here." alone reads as French)
    assert prompt_follows("p", "all is quiet here in the old house tonight.", both, [{}, {}])
    assert not prompt_follows("p", "All is quiet here in the old house tonight.", both, [{}, {}])
    assert not prompt_follows("p", "all is quiet here, in the old house tonight.", both, [{}, {}])
    assert not prompt_follows("p", "   ", ["punctuation:no_comma"], [{}])


def test_the_fixture_is_in_ifevals_format_and_every_instruction_builds():
    """The Hub's google/IFEval columns; each kwargs dict carries every argument key (None where unused), as the
    Hub's parquet has them, and each instruction builds from its arguments."""
    from open_r1.eval.instruction_following import checkers

    rows = [json.loads(line) for line in (IFEVAL_FIXTURE / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and len({row["key"] for row in rows}) == 30
    registry = checkers()
    for row in rows:
        assert set(row) == {"key", "prompt", "instruction_id_list", "kwargs"}
        assert len(row["instruction_id_list"]) == len(row["kwargs"]) >= 1
        assert len({frozenset(kwargs) for kwargs in row["kwargs"]}) == 1 and len(row["kwargs"][0]) == 24
        for instruction_id, kwargs in zip(row["instruction_id_list"], row["kwargs"]):
            registry[instruction_id](instruction_id).build_description(**{k: v for k, v in kwargs.items() if v})


def test_only_rows_with_sentence_or_word_counting_instructions_need_nltk_data(world, tmp_path):
    """`make evaluate` fetches NLTK's data for IFEval's own rows and the fixture (which count sentences and capital
    words), not for the testbed's held-out formats, whose checkers read none."""
    from open_r1.eval.instruction_following import needs_nltk_data

    assert needs_nltk_data(str(IFEVAL_FIXTURE))
    assert needs_nltk_data("google/IFEval")
    assert not needs_nltk_data(str(world.instructions_eval.parent))

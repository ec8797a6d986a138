import pytest
from datasets import Dataset, DatasetDict

from open_r1.configs import ScriptArguments
from open_r1.utils.data import add_system_prompt, check_source, get_dataset, looks_like_local_path


def _save(tmp_path, name, n):
    path = tmp_path / name
    DatasetDict(
        {"train": Dataset.from_dict({"x": [f"{name}{i}" for i in range(n)], "y": list(range(n))})}
    ).save_to_disk(str(path))
    return str(path)


def test_mixture_keeps_weighted_fractions_and_is_seeded(tmp_path):
    a, b = _save(tmp_path, "a", 100), _save(tmp_path, "b", 40)
    mixture = {
        "datasets": [{"id": a, "weight": 0.3, "columns": ["x"]}, {"id": b, "weight": 0.5, "columns": ["x"]}],
        "seed": 3,
        "test_split_size": 0.1,
    }
    data = get_dataset(ScriptArguments(dataset_mixture=mixture))
    rows = list(data["train"]["x"]) + list(data["test"]["x"])
    assert sum(r.startswith("a") for r in rows) == 30 and sum(r.startswith("b") for r in rows) == 20
    assert len(data["test"]) == 5 and data.column_names["train"] == ["x"]
    again = get_dataset(ScriptArguments(dataset_mixture=mixture))
    assert list(again["train"]["x"]) == list(data["train"]["x"])


def test_local_save_to_disk_dataset_loads_like_a_hub_id(tmp_path):
    data = get_dataset(ScriptArguments(dataset_name=_save(tmp_path, "a", 5)))
    assert list(data["train"]["y"]) == [0, 1, 2, 3, 4]


def test_source_checks(tmp_path, monkeypatch):
    assert looks_like_local_path("data/testbed/update") and not looks_like_local_path("org/name")
    with pytest.raises(FileNotFoundError, match="`dataset_name`.*data/nope/update"):
        check_source("data/nope/update", "dataset_name")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        check_source("org/name", "dataset_name")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    check_source("org/name", "dataset_name")  # a hub id is left to the Hub when it is reachable


def test_system_prompt_is_prepended_once():
    data = DatasetDict(
        {
            "train": Dataset.from_list(
                [
                    {"messages": [{"role": "user", "content": "hi"}]},
                    {"messages": [{"role": "system", "content": "own"}, {"role": "user", "content": "hi"}]},
                ]
            )
        }
    )
    out = add_system_prompt(data, "Be safe.")["train"]
    assert out[0]["messages"][0] == {"role": "system", "content": "Be safe."}
    assert out[1]["messages"][0]["content"] == "own" and len(out[1]["messages"]) == 2

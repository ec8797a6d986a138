.PHONY: install system-packages install-eval demo testbed evaluate evals-summary bench bench-quick test test-distributed quality style clean

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
	# IFEval's instruction checkers (lighteval/tasks/tasks/ifeval) score the worlds' instruction-following prompts;
	# lighteval's own dependencies pin a latex2sympy the training stack cannot share, and the checkers need none of
	# them but nltk and langdetect (in setup.py).
	$(PYTHON) -m pip install --no-deps "lighteval==0.13.0"
	touch $@

install: system-packages $(VENV)/.installed

# The local code sandbox runs programs in bubblewrap, with a seccomp filter built by python3-seccomp: installed here
# when missing and run as root with apt-get; otherwise a warning names them (the sandbox refuses to start without
# bubblewrap; code rewards can run on e2b, morph or piston meanwhile).
system-packages:
	@missing=""; bwrap --version 2>/dev/null | grep -Eq ' (0\.([89]|[1-9][0-9])|[1-9])' || missing="bubblewrap"; \
	/usr/bin/python3 -c "import seccomp" 2>/dev/null || missing="$$missing python3-seccomp"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } || \
			echo "warning: apt-get could not install$$missing: the local code sandbox will refuse to start"; \
	else \
		echo "warning: the local code sandbox needs:$$missing (as root: apt-get install$$missing)"; \
	fi

# lighteval gets its own environment (see requirements-eval.txt); `make evaluate` sets it up.
EVAL_VENV ?= .venv-eval
EVAL_PYTHON := $(EVAL_VENV)/bin/python
$(EVAL_VENV)/.installed: setup.py requirements-eval.txt
	test -x $(EVAL_PYTHON) || python3 -m venv $(EVAL_VENV)
	$(EVAL_PYTHON) -c "import torch" 2>/dev/null || $(EVAL_PYTHON) -m pip install "torch==$(TORCH_VERSION)"
	$(EVAL_PYTHON) -m pip install -r requirements-eval.txt
	$(EVAL_PYTHON) -m pip install -e . --no-deps
	touch $@

install-eval: $(EVAL_VENV)/.installed

# The embedded tiny default: build the testbed world (cached; FORCE=1 rebuilds one built from another config, e.g.
# before the instruction-following rows), fine-tune the base model on the update task with the
# tiny SFT recipe, then score base and fine-tuned models side by side.
demo: install
	HF_HUB_OFFLINE=1 $(PYTHON) -m open_r1.testbed build --root $(TESTBED_DIR) $(if $(FORCE),--force)
	rm -rf data/tiny/sft
	HF_HUB_OFFLINE=1 $(VENV)/bin/accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no \
		--dynamo_backend no --cpu src/open_r1/sft.py --config recipes/tiny/sft/config_sft.yaml
	HF_HUB_OFFLINE=1 $(PYTHON) -m open_r1.testbed score --root $(TESTBED_DIR) \
		--model base=$(TESTBED_DIR)/base_model --model sft=data/tiny/sft --json data/tiny/demo_scores.json

# The method comparison: every continual-learning method on the same budget, 3 seeds; a table and a Pareto plot in
# $(TESTBED_DIR)/compare. `make testbed COMPARE_ARGS=--quick` for the few-minute smoke run.
COMPARE_ARGS ?=
testbed: install
	HF_HUB_OFFLINE=1 $(PYTHON) -m open_r1.testbed build --root $(TESTBED_DIR) $(if $(FORCE),--force)
	HF_HUB_OFFLINE=1 $(PYTHON) -m open_r1.testbed compare --root $(TESTBED_DIR) $(COMPARE_ARGS)

# As Open R1: `make evaluate MODEL=<hub id or dir> TASK=<task or group> [PARALLEL=data|tensor NUM_GPUS=N]`, results in
# data/evals/$(MODEL). Tasks: math_500 aime24 aime25 gpqa:diamond safety:{harmbench,strongreject,xstest}
# lcb:codegeneration{,_v4} ifeval testbed:{harmful,benign,update,instructions}; groups: math, safety, testbed, lcb,
# lcb_v4, instructions. vLLM backend
# where installed, else transformers. LiveCodeBench programs run in the local sandbox (open_r1.code.sandbox).
MODEL ?=
TASK ?=
PARALLEL ?=
NUM_GPUS ?= 1
OUTPUT_DIR ?=
# Optional: MAX_NEW_TOKENS=N (reply length), MAX_SAMPLES=N (the first N prompts of each task).
MAX_NEW_TOKENS ?=
MAX_SAMPLES ?=
evaluate: install-eval
	@test -n "$(MODEL)" -a -n "$(TASK)" || { echo "usage: make evaluate MODEL=... TASK=... [PARALLEL=data|tensor NUM_GPUS=N]"; exit 2; }
	OPEN_R1_TESTBED_DIR=$(TESTBED_DIR) $(EVAL_PYTHON) -m open_r1.eval.run run --model $(MODEL) --task $(TASK) \
		$(if $(PARALLEL),--parallel $(PARALLEL)) --num-gpus $(NUM_GPUS) $(if $(OUTPUT_DIR),--output-dir $(OUTPUT_DIR)) \
		$(if $(MAX_NEW_TOKENS),--max-new-tokens $(MAX_NEW_TOKENS)) $(if $(MAX_SAMPLES),--max-samples $(MAX_SAMPLES))

# Every benchmark in one run: data/bench/bench.md and bench.json (docs/benchmarks.md's performance section is made from it
# with BENCH_ARGS=--update-readme). `make bench-quick` takes under 5 minutes on 2 CPU cores.
BENCH_ARGS ?=
bench: install
	HF_HUB_OFFLINE=1 $(PYTHON) scripts/benchmarks/bench.py $(BENCH_ARGS)

bench-quick: install
	HF_HUB_OFFLINE=1 $(PYTHON) scripts/benchmarks/bench.py --quick $(BENCH_ARGS)

# One table and a learning-vs-forgetting plot over every model evaluated under data/evals.
evals-summary: install
	$(PYTHON) -m open_r1.eval.run summarize data/evals --output data/evals/summary

test: install install-eval
	HF_HUB_OFFLINE=1 OPEN_R1_EVAL_PYTHON=$(EVAL_PYTHON) $(PYTHON) -m pytest -v -ra --durations=15 tests/

# The whole conformance matrix of tests/test_distributed.py: every method under every sharding it supports, on 2 CPU
# processes (`make test` runs the methods that change the gradients under DDP, EWC and the trust region under ZeRO).
test-distributed: install
	HF_HUB_OFFLINE=1 OPEN_R1_FULL_MATRIX=1 $(PYTHON) -m pytest -v -ra --durations=15 tests/test_distributed.py

quality: install
	$(VENV)/bin/ruff check $(check_dirs)
	$(VENV)/bin/ruff format --check $(check_dirs)

style: install
	$(VENV)/bin/ruff check --fix $(check_dirs)
	$(VENV)/bin/ruff format $(check_dirs)

clean:
	rm -rf data/tiny $(TESTBED_DIR)

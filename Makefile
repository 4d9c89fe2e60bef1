# Every target sets up what it needs: a virtualenv in .venv, the package with its test and
# models extras, and the fused kernels compiled against the installed TensorFlow.
PYTHON ?= python3
# TensorFlow is an extra of the package, not a requirement (setup.py): this is the one CI uses.
TENSORFLOW ?= tensorflow-cpu==2.21.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# PyTorch's CPU wheel, bench_step's reference contender (fused Adam): only `make bench` installs
# it (setup.py's torch-bench extra), so `make setup`, `make test` and CI stay lean.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_STAMP := $(VENV)/.torch-bench-stamp

.PHONY: setup demo test lint bench wheel-check clean

$(STAMP): setup.py pyproject.toml sm3_tf/versions.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '$(TENSORFLOW)' -e '.[test,models,bench]'
	$(PY) -m sm3_tf.kernel_loader --build
	touch $@

setup: $(STAMP)

# The main job: Transformer (transformer_demo: transformer_small with the SM3 recipe of
# docs/recipes.md) with SM3 on the embedded Wesnoth en->fr corpus, under 10 minutes on 2 cores;
# prints BLEU, sample translations and SM3's memory next to Adam's. The default TRAIN_STEPS is
# the set's DEMO_TRAIN_STEPS (models/sm3_t2t/transformer_hparams.py).
demo: setup
	$(VENV)/bin/sm3-trainer --problem=translate_enfr_wesnoth --model=transformer \
	  --hparams_set=transformer_demo --output_dir=output/demo_enfr_wesnoth \
	  --data_dir=output/t2t_data --train_steps=$${TRAIN_STEPS:-1000}

# The test suite. pytest's exit code 5 (no test collected) is a failure here, not a pass.
test: setup
	$(PY) -m pytest tests -q -p no:cacheprovider --durations=15; \
	  status=$$?; if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	  exit $$status

# One style for all Python (pyproject.toml's [tool.ruff]): lint and format check.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

$(TORCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --extra-index-url $(TORCH_INDEX) -e '.[torch-bench]'
	touch $@

bench: setup $(TORCH_STAMP)
	$(PY) -m benchmarks.run_all

# The platform wheel: built, installed into a fresh venv without a compiler, fused path checked.
wheel-check: setup
	bash .ci/wheel_check.sh $(PY)

clean:
	rm -rf $(VENV) build dist *.egg-info output

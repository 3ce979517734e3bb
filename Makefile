# Two commands for a newcomer (README.md): `make run` (the main job) and `make test`.
# Installing creates .venv once; it is redone only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: install run ci test test-slurm bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev,slurm,llm]'
	touch $(STAMP)

install: $(STAMP)

# The embedded mini suite: the whole DAG on CPU (data, pre-training, training, search, export, evaluation).
run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --cores $(CORES) --configfile config/mini.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --configfile config/mini.yaml --report results/mini/report.zip

# The same rules on a smaller overlay (minutes): what .ci/run checks end to end, then every table cell against
# the golden values committed in config/golden/ci (a cell outside its tolerance fails the check), and the report
# (results/ci/report.zip), which must hold every table and figure.
ci: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --cores $(CORES) --configfile config/mini.yaml config/ci.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --configfile config/mini.yaml config/ci.yaml --report results/ci/report.zip
	$(BIN)/python -m glora.paper.report_check results/ci/report.zip results/ci/tables results/ci/figures
	$(BIN)/python -m glora compare --config config.yaml --config config/mini.yaml --config config/ci.yaml --strict --quiet

test: $(STAMP)
	$(BIN)/python -m pytest

# The CI overlay again, through a real SLURM scheduler on this machine (tests/slurm/cluster.sh starts a one-node
# cluster with 4 GPU slots when none answers, and stops it afterwards), checked against the local run of `make ci`.
test-slurm: ci
	@started=$$(tests/slurm/cluster.sh up) || exit 1; \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m slurm tests/test_slurm_cluster.py; rc=$$?; \
	if [ "$$started" = started ]; then tests/slurm/cluster.sh down; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_glora_step.py

clean:
	rm -rf results/mini results/ci results/demo .snakemake

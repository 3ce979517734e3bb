# Two commands for a newcomer (README.md): `make run` (the main job) and `make test`.
# Installing creates .venv once; it is redone only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# The progress display (snakemake --logger glora, workflow/logger): a distribution of its own, installed
# non-editable because Snakemake finds logger plugins with pkgutil.iter_modules(); redone when it changes.
LOGGER := $(VENV)/.logger-installed
SNAKEMAKE := PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --logger glora
QUICK := config/mini.yaml config/quick.yaml
MINI := config/mini.yaml
CI := config/mini.yaml config/ci.yaml

.PHONY: install run mini ci test lint test-slurm bench gpu-check backbone clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev,slurm,llm]'
	touch $(STAMP)

$(LOGGER): $(STAMP) $(wildcard workflow/logger/pyproject.toml workflow/logger/snakemake_logger_plugin_glora/*.py)
	$(BIN)/pip install --quiet --force-reinstall --no-deps ./workflow/logger
	touch $(LOGGER)

install: $(STAMP) $(LOGGER)

# The start-up worker (glora/worker.py, docs/performance.md): one process imports torch and timm once and forks per
# job, so the jobs do not each pay ~3.5 s of imports; it stops two minutes after the last job. If it cannot start,
# GLORA_WORKER is empty and every job runs in its own process, as without it.
WORKER = GLORA_WORKER="$$($(BIN)/python -m glora.worker --detach --idle 120)"

# The fast embedded default: a subset of the mini suite (config/quick.yaml) through every rule of the workflow, on
# CPU, into results/mini; then the report and where to look.
run: install
	$(WORKER) $(SNAKEMAKE) --cores $(CORES) --configfile $(QUICK)
	$(SNAKEMAKE) --configfile $(QUICK) --report results/mini/report.zip
	@$(BIN)/python -m glora where --config config.yaml $(addprefix --config ,$(QUICK))

# The whole mini suite (config/mini.yaml): every method and task of the paper in miniature. After `make run` it
# only runs what the subset left out.
mini: install
	$(WORKER) $(SNAKEMAKE) --cores $(CORES) --configfile $(MINI)
	$(SNAKEMAKE) --configfile $(MINI) --report results/mini/report.zip
	@$(BIN)/python -m glora where --config config.yaml $(addprefix --config ,$(MINI))

# The same rules on a smaller overlay (minutes): what .ci/run checks end to end, then every table cell against
# the golden values committed in config/golden/ci (a cell outside its tolerance fails the check), and the report
# (results/ci/report.zip), which must hold every table and figure.
ci: install
	$(WORKER) $(SNAKEMAKE) --cores $(CORES) --configfile $(CI)
	$(SNAKEMAKE) --configfile $(CI) --report results/ci/report.zip
	$(BIN)/python -m glora.paper.report_check results/ci/report.zip results/ci/tables results/ci/figures
	$(BIN)/python -m glora compare --config config.yaml $(addprefix --config ,$(CI)) --strict --quiet

test: install
	$(BIN)/python -m pytest

# ruff (pyproject.toml: E, F, W, I, UP, B), snakefmt on the Snakefile and the rules, actionlint on the GitHub
# workflow (CONTRIBUTING.md)
lint: install
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/actionlint .github/workflows/*.yml

# The CI overlay again, through a real SLURM scheduler on this machine (tests/slurm/cluster.sh starts a one-node
# cluster with 4 GPU slots when none answers, and stops it afterwards), checked against the local run of `make ci`.
test-slurm: ci
	@started=$$(tests/slurm/cluster.sh up) || exit 1; \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m slurm tests/test_slurm_cluster.py; rc=$$?; \
	if [ "$$started" = started ]; then tests/slurm/cluster.sh down; fi; exit $$rc

# Pre-train the mini suite's tiny ViT again (rules mini_upstream and pretrain, ~N minutes on 2 cores) and check
# that it is byte-identical to the committed one (assets/vit_mini/).
backbone: install
	$(SNAKEMAKE) --cores $(CORES) --configfile $(MINI) config/backbone.yaml -- results/backbone/pretrain/vit_mini.safetensors
	cd results/backbone/pretrain && sha256sum --check $(CURDIR)/assets/vit_mini/vit_mini.safetensors.sha256

# Every benchmark (training step, search candidate, the peer PEFT, process start-up): ratios only, each line with
# the load it was measured under (docs/performance.md: what each measures). Installs the bench extra (peft) once.
BENCH := $(VENV)/.bench-installed
$(BENCH): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH)

bench: install $(BENCH)
	$(BIN)/python benchmarks/bench_glora_step.py --ratios
	$(BIN)/python benchmarks/bench_search_candidate.py --ratios
	$(BIN)/python benchmarks/bench_vs_peft.py --ratios
	$(BIN)/python benchmarks/bench_startup.py --ratios --worker --results results/mini

# What no GPU has run yet (CUDA, bf16, pinned memory, loader workers; Table 4 and the plan's calibration rows on
# the GPU; the CI overlay with --resources gpu=1), <= 8 min on one GPU; without a GPU: the CPU-side parts, exit 0.
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf results/mini results/ci results/backbone results/demo .snakemake

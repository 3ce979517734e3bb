# Config validation, wildcard constraints, the job plan (glora.workflow), where every output goes (glora.layout)
# and the options of every stage's command. Nothing here imports torch, so `snakemake -n` plans without it.
import json

from snakemake.utils import validate

from glora import workflow as plan
from glora.config import check_method_options, locator
from glora.layout import Layout, expand

validate(config, workflow.source_path("../schemas/config.schema.yaml"))
# a misspelt methods.<name> key fails the plan (snakemake -n), naming its file and line, not a job hours later
CONFIGFILES = [f for f in workflow.configfiles if f not in workflow.overwrite_configfiles]
check_method_options(config, "the configuration", locator([*CONFIGFILES, *workflow.overwrite_configfiles]))
expand(config)  # "{results}" in a value: the run's results folder

OUT = Layout.of(config)
# The stages read the run's configuration from this file, written when a (non-dry) run starts; each rule
# declares as params the part of it that determines its outputs, so a change reruns only those jobs.
RESOLVED = OUT.resolved_config
GPU = config["resources"]["gpu"]
DEVICE = "cuda" if GPU else "cpu"
#: options every stage gets (a rule param, so that the shell command uses no global)
OPTS = f"--config {RESOLVED} --quiet --device {DEVICE}"


onstart:
    import yaml

    os.makedirs(OUT.root, exist_ok=True)
    with open(RESOLVED, "w") as f:
        yaml.safe_dump(json.loads(json.dumps(config)), f, sort_keys=False)


wildcard_constraints:
    exp="|".join(plan.EXPERIMENTS),
    variant=r"[A-Za-z0-9_.-]+",
    task=r"[A-Za-z0-9_.-]+",
    run=plan.RUN_PATTERN,


def job_args(w):
    return plan.stage_args(config, w.exp, w.variant, w.task, w.run)


def runtime(stage):
    return config["resources"]["runtime_min"].get(stage, 60)


def whole_machine(wildcards=None):
    """Rule efficiency's threads: every core this run schedules. Each job holds at least one core, so no other job
    runs while Table 4 is timed (the stage records the load it saw in the JSON beside the table). torch's threads
    still come from the configuration (params.torch_threads), so the ratios do not depend on the machine's core
    count. On a cluster the profile's set-threads applies: ask for an exclusive node there (workflow/profiles/slurm)."""
    return workflow.resource_settings.cores or 1


def data_inputs(w):
    """What a job needs before it starts: the (checked or generated) data and the backbone checkpoint."""
    family = plan.EXPERIMENTS[w.exp][0]
    backbone, checkpoint = plan.backbone_of(config, w.exp)
    if config["suite"] == "mini":
        return [OUT.data, checkpoint]
    checked = [family, "imagenet"] if w.exp == "dg" else [family]
    return [OUT.manifest(f) for f in checked] + [OUT.manifest(f"checkpoint_{backbone}")]


def export_inputs(w):
    """The export of a run reads its weights (NOAH: the retrained subnet's), and for search-based methods the
    search's best choices."""
    job = plan.Job(w.exp, w.variant, w.task, w.run)
    stage = "retrain" if plan.retrained(config, w.variant) else "train"
    inputs = {"weights": job.path(config, stage, "weights.safetensors")}
    if plan.searched(config, w.variant):
        inputs["choices"] = job.path(config, "search", "best.json")
    return inputs


# Table 2 (workflow/rules/llm.smk)
LLM = config["experiments"]["llm"]
LLM_OPTS = f"--config {RESOLVED} --quiet"
LLM_GPU_OPTS = f"{LLM_OPTS} --device {DEVICE}"


def llm_data(w=None):
    """The mini suite generates its tiny model and data; a paper run reads the user's local files, once the
    LLaMA folders have been checked (check_llm, prepare.smk: gated weights, nothing is downloaded)."""
    return [OUT.llm_data] if config["suite"] == "mini" else [OUT.manifest("llm")]


def llm_export_inputs(w):
    """A tuned row's adapters, and for GLoRA the search's best.json."""
    inputs = {"weights": OUT.llm("train", w.model, f"{w.method}_{w.data}", "weights.safetensors")}
    if w.method == "glora":
        inputs["choices"] = OUT.llm("search", w.model, f"glora_{w.data}", "best.json")
    return inputs


def llm_evaluated_model(w):
    """The exported folder of a tuned row; the user's (or the mini suite's) base folder for a base row."""
    if w.row == "base":
        return llm_data()
    return [OUT.llm("export", w.model, w.row)]

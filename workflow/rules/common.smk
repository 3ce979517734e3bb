# Config validation and the target lists that `rule all` is built from.
from snakemake.utils import validate


validate(config, workflow.source_path("../schemas/config.schema.yaml"))


def all_targets():
    return ["results/demo/summary.json"]

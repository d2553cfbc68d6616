# pgrepro: every experiment of experiments/config.yaml, at the scale chosen with
#   snakemake --cores 2 --config scale=smoke|quick|paper      (default: quick)
# On a SLURM cluster: snakemake --workflow-profile profiles/slurm --config scale=paper
import os

from snakemake.utils import min_version

min_version("9.0")


# found from the Snakefile, so `--directory elsewhere` works too
configfile: os.path.join(workflow.basedir, "experiments", "config.yaml")


include: "experiments/rules/common.smk"
include: "experiments/rules/train.smk"
include: "experiments/rules/analysis.smk"


rule all:
    default_target: True
    input:
        all_outputs(),


report: "experiments/report/workflow.rst"

# mathpipe: the DeepSeekMath recipe (arXiv 2402.03300) as one workflow.
#   snakemake --cores 2                                 # the embedded default (config/tiny.yaml)
#   snakemake --configfile config/deepseekmath.yaml     # the paper's recipe (GPUs, real data)
#   snakemake rl --forcerun grpo                        # rerun one stage
from snakemake.utils import min_version

min_version("9.0")


# The embedded default unless --configfile names another config. (A `configfile:` directive would be
# deep-merged with the one given on the command line, leaking tiny's keys into every other config.)
if not workflow.config_settings.configfiles:

    configfile: f"{workflow.basedir}/config/tiny.yaml"


# The config is validated against config/schema.yaml (defaults filled, command-line overrides typed) in
# pipeline/rules/common.smk, which stops with one line naming a bad key.


include: "pipeline/rules/common.smk"
include: "pipeline/rules/world.smk"
include: "pipeline/rules/corpus.smk"
include: "pipeline/rules/pretrain.smk"
include: "pipeline/rules/sft.smk"
include: "pipeline/rules/rl.smk"
include: "pipeline/rules/compare_rl.smk"
include: "pipeline/rules/eval.smk"


# A line per running job every 30 s on the console (pipeline/progress.py; MATHPIPE_PROGRESS_S=0: off).
onstart:
    start_progress(FOLDERS["logs"])


rule all:
    input:
        RESULTS / "report.md",
    default_target: True

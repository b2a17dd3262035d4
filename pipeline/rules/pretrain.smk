# Continued pretraining (DeepSeekMath §2.3, §3.1) and the corpus-quality experiment (§2.2).
#   snakemake pretrain         the tokenizer and the pretrained model(s): pretrain/mined (and pretrain/web
#                              when stages.corpus_quality is on)
#   snakemake corpus_quality   the same small model pretrained on the mined corpus and on unfiltered web
#                              text, both through the same SFT and eval: eval/{pretrain,sft}{,_web}/...
# Beside each model folder: metrics.jsonl (loss, lr, tokens/s, source shares per step), run.json, and while
# training checkpoints/ (not declared, so Snakemake keeps it when a job dies and the rerun resumes).
import shlex
import sys

from sft.mixture import expand_results

# Sections with schema defaults filled in; each goes into `params`, so a changed key reruns just the
# rules that depend on it (params rerun-trigger).
_RESOLVED_CFG = validate_config(dict(config), source="snakemake config")
TOKENIZER_CFG = _RESOLVED_CFG["tokenizer"]
MODEL_CFG = _RESOLVED_CFG["model"]
PRETRAIN_CFG = _RESOLVED_CFG["pretrain"]
SFT_CFG = _RESOLVED_CFG["sft"]
PRETRAIN_VARIANTS = ["mined", "web"] if config.get("stages", {}).get("corpus_quality", True) else ["mined"]
PRETRAIN_GPUS = int(PRETRAIN_CFG["resources"]["gpus"])


def launcher(gpus):
    """`python -m` for one process; accelerate launch (one process per GPU, DDP) for more than one GPU."""
    if gpus > 1:
        return f"{shlex.quote(sys.executable)} -m accelerate.commands.launch --num_processes {gpus} -m"
    return PY


def local_data(path):
    """A configured data path as a Snakemake input: `{results}` expanded; globs are not declared."""
    path = expand_results(path, RESULTS)
    return None if any(c in path for c in "*?[") else path


def tokenizer_inputs(wildcards):
    """From scratch: the mined corpus and the SFT problems the BPE is trained on; a base tokenizer: none."""
    inputs = {"config": CONFIG_FILE}
    if not TOKENIZER_CFG["pretrained"]:
        inputs["corpus"] = RESULTS / "corpus/final"
        inputs["problems"] = [p for p in (local_data(d["path"]) for d in SFT_CFG["data"] if d.get("path")) if p]
    return inputs


def tokenizer_args(wildcards, input):
    if TOKENIZER_CFG["pretrained"]:
        return ""
    return f"--corpus {input.corpus} " + " ".join(f"--problems {p}" for p in input.problems)


def pretrain_inputs(wildcards):
    """The tokenizer, the variant's local data folders (hub sources are fetched by the job) and a local
    base model folder when `model.init` is one."""
    sources = PRETRAIN_CFG["variants"][wildcards.variant]["sources"]
    data = [p for p in (local_data(s["path"]) for s in sources if s.get("path")) if p]
    inputs = {"tokenizer": RESULTS / "tokenizer", "data": data, "config": CONFIG_FILE}
    if MODEL_CFG["init"] and Path(MODEL_CFG["init"]).exists():
        inputs["init"] = MODEL_CFG["init"]
    return inputs


def pretrain_model_dir():
    out = directory(RESULTS / "pretrain/{variant,mined|web}/model")
    return protected(out) if PRETRAIN_CFG["protect"] else out


rule tokenizer:
    input:
        unpack(tokenizer_inputs),
    output:
        tokenizer=directory(RESULTS / "tokenizer"),
    params:
        tokenizer=TOKENIZER_CFG,
        data=tokenizer_args,
    log:
        RESULTS / "logs/pretrain/tokenizer.log",
    benchmark:
        RESULTS / "benchmarks/pretrain/tokenizer.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    message:
        "Training the BPE tokenizer (digits split, chat template saved) into {output.tokenizer}"
    shell:
        "{PY} sft.tokenizer --config {input.config} {params.data} --out {output.tokenizer} > {log} 2>&1"


rule pretrain_model:
    input:
        unpack(pretrain_inputs),
    output:
        model=pretrain_model_dir(),
    params:
        pretrain=PRETRAIN_CFG,
        model=MODEL_CFG,
        seed=config.get("seed", 0),
        launch=launcher(PRETRAIN_GPUS),
    log:
        RESULTS / "logs/pretrain/{variant}.log",
    benchmark:
        RESULTS / "benchmarks/pretrain/{variant}.tsv"
    threads: stage_threads()
    resources:
        gpu=PRETRAIN_GPUS,
        mem_mb=PRETRAIN_CFG["resources"]["mem_mb"],
        runtime=PRETRAIN_CFG["resources"]["runtime"],
    message:
        "Pretraining on the {wildcards.variant} mixture: {params.pretrain[tokens]} tokens into {output.model}"
    shell:
        "{params.launch} sft.pretrain --config {input.config} --variant {wildcards.variant}"
        " --tokenizer {input.tokenizer} --out {output.model} --threads {threads} > {log} 2>&1"


rule pretrain:
    input:
        expand(RESULTS / "pretrain/{variant}/model", variant=PRETRAIN_VARIANTS),
    message:
        "Pretrained: {input}"


def corpus_quality_metrics():
    """Eval metrics of both arms after pretraining and after SFT, on every configured benchmark."""
    benchmarks = list(config.get("eval", {}).get("benchmarks", {}))
    return expand(
        RESULTS / "eval/{ckpt}/{benchmark}/metrics.json",
        ckpt=["pretrain", "pretrain_web", "sft", "sft_web"],
        benchmark=benchmarks,
    )


rule corpus_quality:
    input:
        corpus_quality_metrics(),
    message:
        "Corpus-quality experiment (paper §2.2): mined corpus vs unfiltered web text, same model, budget, SFT and eval"

# Constants and input functions for pretrain.smk. They live apart from the rules because Snakemake's
# linter asks for rules and functions in separate files.
# Sections with schema defaults filled in; each goes into `params`, so a changed key reruns just the
# rules that depend on it (params rerun-trigger).
TOKENIZER_CFG = RESOLVED["tokenizer"]
MODEL_CFG = RESOLVED["model"]
PRETRAIN_CFG = RESOLVED["pretrain"]
SFT_CFG = RESOLVED["sft"]
PRETRAIN_VARIANTS = ["mined", "web"] if config.get("stages", {}).get("corpus_quality", True) else ["mined"]
PRETRAIN_GPUS = int(PRETRAIN_CFG["resources"]["gpus"])
PRETRAIN_PROCESSES = stage_processes(PRETRAIN_CFG["resources"])


def local_data(path):
    """A configured data path (placeholders already expanded, common.smk) as a Snakemake input; globs are
    not declared."""
    path = str(path)
    return None if any(c in path for c in "*?[") else path


def tokenizer_inputs(wildcards):
    """From scratch: the mined corpus and the SFT problems the BPE is trained on; a base tokenizer: none."""
    inputs = {"config": CONFIG_FILE}
    if not TOKENIZER_CFG["pretrained"]:
        inputs["corpus"] = FOLDERS["corpus_final"]
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
    inputs = {"tokenizer": FOLDERS["tokenizer"], "data": data, "config": CONFIG_FILE}
    if MODEL_CFG["init"] and Path(MODEL_CFG["init"]).exists():
        inputs["init"] = MODEL_CFG["init"]
    return inputs


def pretrain_model_dir():
    out = directory(RESULTS / "pretrain/{variant,mined|web}/model")
    return protected(out) if PRETRAIN_CFG["protect"] else out



def corpus_quality_metrics():
    """Eval metrics of both arms after pretraining and after SFT, on every configured benchmark."""
    benchmarks = list(config.get("eval", {}).get("benchmarks", {}))
    return expand(
        FOLDERS["eval"] / "{ckpt}/{benchmark}/metrics.json",
        ckpt=["pretrain", "pretrain_web", "sft", "sft_web"],
        benchmark=benchmarks,
    )

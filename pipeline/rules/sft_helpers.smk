# Constants and input functions for sft.smk. They live apart from the rules because Snakemake's
# linter asks for rules and functions in separate files.
SFT_GPUS = int(SFT_CFG["resources"]["gpus"])
SFT_PROCESSES = stage_processes(SFT_CFG["resources"])


def sft_inputs(wildcards):
    """The pretrained model, the local SFT data files and the eval sets it is decontaminated against."""
    data = [p for p in (local_data(d["path"]) for d in SFT_CFG["data"] if d.get("path")) if p]
    decontam = SFT_CFG["decontaminate"]
    benchmarks = [local_data(b["path"]) for b in decontam["benchmarks"] if b.get("path")] if decontam["enabled"] else []
    return {
        "init": RESULTS / f"pretrain/{wildcards.variant}/model",
        "data": data,
        "benchmarks": [b for b in benchmarks if b],
        "config": CONFIG_FILE,
    }


def sft_model_dir():
    out = directory(RESULTS / "sft/{variant,mined|web}/model")
    return protected(out) if SFT_CFG["protect"] else out

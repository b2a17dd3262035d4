"""Multi-process training, really run (issue #16): `accelerate launch --num_processes 2` with the shipped
DDP config (gloo on this CPU) for pretraining, SFT and every RL method gives the same run as one process with the
same global batch: the same loss curve and the same final weights, within a stated tolerance. Also: the
shipped accelerate configs, and the attention / gradient-checkpointing plumbing every training stage uses.

Tolerance. Two processes average their micro-batch gradients by an all-reduce, one process by
accumulation; the sums are the same numbers added in a different order, so they may differ in the last
float32 bits (measured: bit-identical here). Losses are compared to 1e-5 relative, weights to 1e-5
absolute, far below what one optimizer step changes (lr 3e-3) and far above float32 rounding.
RL on N processes: tests/test_distributed_rl.py.
"""

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from tests.launch import DDP, ROOT
from tests.launch import launch2 as _launch2

FSDP = ROOT / "config" / "accelerate" / "fsdp.yaml"
LOSS_RTOL, WEIGHT_ATOL = 1e-5, 1e-5


def _assert_same_run(one: Path, two: Path) -> None:
    from safetensors.torch import load_file

    r1, r2 = (json.loads((d / "run.json").read_text()) for d in (one, two))
    assert (r1["processes"], r2["processes"]) == (1, 2), "the launch did not run two processes"
    assert r1["grad_accum"] == 2 * r2["grad_accum"], "same global batch: half the accumulation per process"
    m1, m2 = ([json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] for d in (one, two))
    assert [m["step"] for m in m1] == [m["step"] for m in m2] and len(m1) >= 4
    for a, b in zip(m1, m2):
        assert b["loss"] == pytest.approx(a["loss"], rel=LOSS_RTOL), (a["step"], a["loss"], b["loss"])
        assert b["lr"] == pytest.approx(a["lr"], rel=1e-9), "the lr schedule advances once per optimizer step"
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    assert m1[-1]["loss"] < m1[0]["loss"], "the run should learn something, or equality proves little"
    w1, w2 = (load_file(str(d / "model" / "model.safetensors")) for d in (one, two))
    assert w1.keys() == w2.keys()
    for k in w1:
        diff = float((w1[k] - w2[k]).abs().max())
        assert diff <= WEIGHT_ATOL, f"{k}: 2-process weights differ from 1-process by {diff}"
    assert not (two / "checkpoints").exists()


@pytest.fixture(scope="module")
def pretrain_dir(tmp_path_factory):
    from pipeline.models import train_tokenizer

    d = tmp_path_factory.mktemp("dist_pretrain")
    texts = {"math": [f"Ann has {i} pens. She gets {j} more, so she has {i} + {j} = {i + j} pens."
                      for i in range(12) for j in range(6)],
             "web": [f"The {w} sat by the river on day {i}." for i in range(30) for w in ("fox", "owl")]}
    for name, docs in texts.items():
        (d / name).mkdir()
        for s in range(2):
            pq.write_table(pa.table({"text": docs[s::2]}), d / name / f"part-{s:05d}.parquet")
    train_tokenizer(texts["math"] + texts["web"], vocab_size=300).save_pretrained(d / "tokenizer")
    # 6 steps of 4 rows: 1 process accumulates 2 micro-batches of 2 rows, 2 processes take 2 rows each.
    # Checkpoints every 2 steps, so the 2-process save path (every rank writing its RNG state) runs too.
    cfg = {"name": "t", "results_root": str(d / "results"), "seed": 0, "threads": 1,
           "model": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "max_position_embeddings": 64},
           "pretrain": {"variants": {"mined": {"sources": [
               {"name": "math", "weight": 0.75, "path": str(d / "math")},
               {"name": "web", "weight": 0.25, "path": str(d / "web")}]}},
               "tokens": 32 * 4 * 6, "seq_len": 32, "batch_size": 4, "micro_batch_size": 2, "save_every": 2,
               "optimizer": {"lr": 0.003, "warmup_steps": 2, "schedule": "cosine"}}}
    (d / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return d


@pytest.mark.slow
def test_pretraining_two_processes_match_one(pretrain_dir):
    from sft.pretrain import main

    d = pretrain_dir

    def args(run):
        return ["--config", str(d / "cfg.yaml"), "--variant", "mined", "--tokenizer", str(d / "tokenizer"),
                "--out", str(d / run / "model")]

    torch.set_num_threads(1)
    main(args("one"))
    two = _launch2("sft.pretrain", args("two"))
    assert two.returncode == 0, two.stderr[-4000:]
    _assert_same_run(d / "one", d / "two")


@pytest.mark.slow
def test_sft_two_processes_match_one(tmp_path):
    from grading.prompts import user_message
    from pipeline.models import build_model, save, train_tokenizer
    from sft.train import main

    rows = [{"problem_id": f"p{i}", "question": f"Sam has {a} hats and gets {b} more. How many hats?",
             "answer": str(a + b), "cot": f"Sam has {a} + {b} = {a + b} hats. The answer is \\boxed{{{a + b}}}"}
            for i, (a, b) in enumerate((i % 9 + 1, i % 5 + 1) for i in range(40))]
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    texts = [r[k] for r in rows for k in ("question", "cot")] + [user_message("", "cot")] * 5
    tok = train_tokenizer(texts, vocab_size=300)
    save(build_model(tok, hidden_size=32, num_layers=2, num_heads=2, seed=0), tok, tmp_path / "init")
    # Packed rows of 128 tokens (a few examples each), 4 rows a step; the loss is the mean over response tokens
    # of each micro-batch, averaged over micro-batches (1 process) or processes (2).
    cfg = {"name": "t", "results_root": str(tmp_path / "results"), "threads": 1, "seed": 0,
           "sft": {"data": [{"name": "world", "path": str(data)}], "formats": ["cot"], "steps": 5,
                   "batch_size": 4, "micro_batch_size": 2, "max_len": 128, "save_every": 2, "packing": "packed",
                   "optimizer": {"lr": 0.003, "warmup_steps": 1, "schedule": "cosine"},
                   "decontaminate": {"benchmarks": []}}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))

    def args(run):
        return ["--config", str(tmp_path / "cfg.yaml"), "--init", str(tmp_path / "init"),
                "--out", str(tmp_path / run / "model")]

    torch.set_num_threads(1)
    main(args("one"))
    two = _launch2("sft.train", args("two"))
    assert two.returncode == 0, two.stderr[-4000:]
    _assert_same_run(tmp_path / "one", tmp_path / "two")


def test_shipped_accelerate_configs():
    """ddp.yaml and fsdp.yaml load as accelerate configs; fsdp.yaml is the issue's GPU setting (full shard,
    one unit per Llama decoder layer) and config/deepseekmath.yaml selects it, with bf16 compute."""
    from accelerate.commands.config.config_args import load_config_from_file

    from pipeline.config import load_config

    ddp, fsdp = load_config_from_file(str(DDP)), load_config_from_file(str(FSDP))
    assert ddp.distributed_type == "MULTI_GPU" and fsdp.distributed_type == "FSDP"
    fc = fsdp.fsdp_config
    assert fc["fsdp_version"] == 2 and fc["fsdp_reshard_after_forward"] is True  # FULL_SHARD
    assert fc["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fc["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    assert fc["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    paper = load_config(str(ROOT / "config" / "deepseekmath.yaml"))
    assert ROOT / paper["model"]["accelerate_config"] == FSDP
    assert paper["model"]["gradient_checkpointing"] is True
    assert paper["pretrain"]["mixed_precision"] == paper["sft"]["mixed_precision"] == "bf16"
    tiny = load_config(str(ROOT / "config" / "tiny.yaml"))
    assert ROOT / tiny["model"]["accelerate_config"] == DDP  # the schema default


def _tiny_model(**cfg):
    from pipeline.models import build_model, configure_for_training, train_tokenizer

    tok = train_tokenizer([f"{a} + {b} = {a + b}" for a in range(10) for b in range(10)], vocab_size=60)
    model = build_model(tok, hidden_size=32, num_layers=2, num_heads=2, seed=0)
    return configure_for_training(model, **cfg).train()


def test_gradient_checkpointing_is_on_and_changes_no_gradient():
    plain = _tiny_model()
    ckpt = _tiny_model(gradient_checkpointing=True)
    assert ckpt.is_activation_checkpointing and not plain.is_activation_checkpointing
    ids = torch.randint(0, 60, (2, 12), generator=torch.Generator().manual_seed(1))
    grads = []
    for model in (plain, ckpt):
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-6), n


def test_flash_attention_without_the_package_falls_back_to_sdpa(caplog):
    from pipeline.models import resolve_attn_implementation

    if torch.cuda.is_available():
        pytest.skip("on a GPU machine the answer depends on whether flash-attn is installed")
    with caplog.at_level(logging.WARNING, logger="pipeline.models"):
        model = _tiny_model(attn_implementation="flash_attention_2")
    assert model.config._attn_implementation == "sdpa"
    assert "flash_attention_2 requested but no CUDA GPU: using sdpa" in caplog.text
    assert resolve_attn_implementation("eager") == "eager" and resolve_attn_implementation(None) is None


# --- GRPO: sampling and the loss do not depend on the number of processes ------------------------------

"""Held-out math-text loss (eval/heldout_loss.py) and the paired difference of two arms
(pipeline/report_headline.heldout_difference): golden numbers worked out by hand from the rules."""

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from eval.heldout_loss import heldout_loss, main, read_texts
from pipeline.report_headline import heldout_difference

ROOT = Path(__file__).resolve().parents[1]
EOS, PAD = 0, 0
CHARS = {"a": 1, "b": 2, "c": 3}


class CharTokenizer:
    """a, b, c -> 1, 2, 3; EOS (and pad) 0; no BOS."""

    eos_token_id, pad_token_id, bos_token_id = EOS, PAD, None

    def __call__(self, text):
        return {"input_ids": [CHARS[c] for c in text]}


class Bigram(torch.nn.Module):
    """p(next | prev) = 1/2 for next = prev + 1 (mod 4), 1/6 for each of the three other tokens: the
    probability of every token is known by hand, and it depends on the one before it (so an off-by-one
    between logits and targets changes the numbers)."""

    def __init__(self, max_positions=64):
        super().__init__()
        probs = torch.full((4, 4), 1 / 6, dtype=torch.float64)
        for prev in range(4):
            probs[prev, (prev + 1) % 4] = 0.5
        self.table = probs.log()
        self.config = SimpleNamespace(max_position_embeddings=max_positions)
        self.device = torch.device("cpu")

    def forward(self, input_ids, attention_mask):
        assert attention_mask.shape == input_ids.shape
        return SimpleNamespace(logits=self.table[input_ids])


def test_nll_by_hand_on_a_bigram_model():
    """'abca' after EOS: 'a' is context; b|a = 1/2, c|b = 1/2, a|c = 1/6 (c is followed by EOS=0 with 1/2)
    -> 2 ln 2 + ln 6 over 3 tokens. 'ba': a|b = 1/6 -> ln 6 over 1 token. 'c': nothing to score. Batched
    together (padded to 5 positions), each document's numbers are its own. Per-token NLLs are float32
    (computed on the model's device), hence the 1e-6 tolerance."""
    out = heldout_loss(Bigram(), CharTokenizer(), ["abca", "ba", "c"], batch_size=3)
    (s1, n1), (s2, n2), (s3, n3) = out["per_document"]
    assert (n1, n2, n3) == (3, 1, 0)
    assert s1 == pytest.approx(2 * math.log(2) + math.log(6), abs=1e-6)
    assert s2 == pytest.approx(math.log(6), abs=1e-6) and s3 == 0
    assert out["tokens"] == 4 and out["documents"] == 3 and out["unscored_documents"] == 1
    assert out["nats_per_token"] == pytest.approx((2 * math.log(2) + 2 * math.log(6)) / 4, abs=1e-6)
    # one document per batch gives the same numbers
    single = heldout_loss(Bigram(), CharTokenizer(), ["abca", "ba", "c"], batch_size=1)["per_document"]
    assert [n for _, n in single] == [3, 1, 0]
    assert [s for s, _ in single] == pytest.approx([s1, s2, s3], abs=1e-12)


def test_max_tokens_truncates_and_counts():
    """max_tokens 1: only b|a of 'abca' is scored (ln 2); the model's context (5 positions) caps it too."""
    out = heldout_loss(Bigram(), CharTokenizer(), ["abca", "ab"], max_tokens=1)
    assert out["per_document"] == [[pytest.approx(math.log(2)), 1], [pytest.approx(math.log(2)), 1]]
    assert out["truncated_documents"] == 1
    capped = heldout_loss(Bigram(max_positions=5), CharTokenizer(), ["abcabc"], max_tokens=100)
    assert capped["max_tokens"] == 2 and capped["per_document"][0][1] == 2 and capped["truncated_documents"] == 1


def test_bad_records_are_skipped_and_named(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text('{"question": "q1", "cot": "s1"}\n{"question": "q2"}\n{not json\n'
                    '{"question": " ", "cot": ""}\n[1]\n{"question": "q3", "cot": "s3"}\n'
                    '{"question": "q4", "cot": "s4"}\n')
    texts, skipped = read_texts(path, ["question", "cot"], limit=2)
    assert texts == ["q1\ns1", "q3\ns3"]
    assert skipped[0] == f"{path}:2: no text field 'cot'"
    assert skipped[1].startswith(f"{path}:3: bad JSON")
    assert skipped[2] == f"{path}:4: empty text" and skipped[3].startswith(f"{path}:5: not a JSON object")
    texts, skipped = read_texts(path, "question")  # one field: q2 is usable, the blank question is not
    assert texts == ["q1", "q2", "q3", "q4"] and len(skipped) == 3


def test_paired_difference_and_se_by_hand():
    """Equal lengths (10 tokens each): a = 5, 6, 7 and b = 8, 8, 8 nats -> X = 18/30 = 0.6, Y = 24/30 = 0.8,
    d_i = -0.3, -0.2, -0.1, D = -0.2, sd(d) = sqrt((0.01 + 0 + 0.01) / 2) = 0.1, SE = 0.1 / sqrt(3).
    Unequal (10, 20, 30 tokens), a - b = -1, -6, -3: D = -10/60 = -1/6, mean tokens 20,
    z = (-1 + 10/6, -6 + 20/6, -3 + 30/6) / 20 = (1/30, -2/15, 1/10), sum z^2 = 26/900, SE = sqrt(26/900 / 6)."""
    h = heldout_difference({"per_document": [[5, 10], [6, 10], [7, 10]]},
                           {"per_document": [[8, 10], [8, 10], [8, 10]]})
    assert h["mined"] == pytest.approx(0.6) and h["web"] == pytest.approx(0.8)
    assert h["diff"] == pytest.approx(-0.2) and h["se"] == pytest.approx(0.1 / math.sqrt(3))
    assert (h["documents"], h["tokens"]) == (3, 30)
    u = heldout_difference({"per_document": [[1, 10], [2, 20], [3, 30]]},
                           {"per_document": [[2, 10], [8, 20], [6, 30]]})
    assert u["diff"] == pytest.approx(-1 / 6) and u["se"] == pytest.approx(math.sqrt(26 / 900 / 6))
    with pytest.raises(ValueError, match="different documents or tokens"):
        heldout_difference({"per_document": [[1, 10], [2, 20]]}, {"per_document": [[1, 10], [2, 21]]})
    with pytest.raises(ValueError, match="2\\+ documents"):
        heldout_difference({"per_document": [[1, 10]]}, {"per_document": [[2, 10]]})


def test_cli_on_a_tiny_transformer_matches_the_labels_loss(tmp_path):
    """The command line on a real (random, 1-layer) causal LM: skipped records are counted, and each
    document's NLL equals Hugging Face's own labels loss on [EOS, text] less its first target (the text's
    first token, which is context here) - an independent computation of the same quantity."""
    from pipeline.models import build_model, save, train_tokenizer

    texts = ["Tom has 3 apples and buys 4 more, so he has 3 + 4 = 7 apples.",
             "Solve 2x + 3 = 7: subtract 3, then divide by 2, so x = 2.",
             "The area of a 3 by 5 rectangle is 3 * 5 = 15."]
    tok = train_tokenizer(texts * 20, vocab_size=300)
    torch.manual_seed(0)
    model = build_model(tok, hidden_size=16, num_layers=1, num_heads=2, max_position_embeddings=64)
    save(model, tok, tmp_path / "model")
    data = tmp_path / "heldout.jsonl"
    data.write_text("\n".join([json.dumps({"text": texts[0]}), json.dumps({"body": "x"}), json.dumps({"text": ""}),
                               json.dumps({"text": texts[1]}), json.dumps({"text": texts[2]})]) + "\n")
    out = main(["--model", str(tmp_path / "model"), "--data", str(data), "--batch-size", "2",
                "--out", str(tmp_path / "h.json"), "--log-level", "WARNING"])
    assert json.loads((tmp_path / "h.json").read_text())["tokens"] == out["tokens"]
    assert out["documents"] == 3 and out["skipped"] == 2
    assert out["skipped_records"] == [f"{data}:2: no text field 'text'", f"{data}:3: empty text"]
    model.eval()
    for text, (nll, n) in zip(texts, out["per_document"]):
        ids = torch.tensor([[tok.eos_token_id] + tok(text)["input_ids"]])
        labels = ids.clone()
        labels[0, :2] = -100  # EOS and the first text token are context
        with torch.no_grad():
            ref = model(input_ids=ids, labels=labels).loss.item()
        assert n == ids.shape[1] - 2
        assert nll / n == pytest.approx(ref, rel=1e-4)
    with pytest.raises(SystemExit, match="no held-out data"):
        main(["--model", str(tmp_path / "model"), "--out", str(tmp_path / "x.json")])


def test_smoke_dag_has_a_heldout_job_per_base_arm(tmp_path):
    res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile",
                          "config/smoke.yaml", "--config", f"results_root={tmp_path}/r"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    line = next(ln for ln in (res.stdout + res.stderr).splitlines() if ln.startswith("heldout_loss"))
    assert line.split()[1] == "2"  # pretrain and pretrain_web

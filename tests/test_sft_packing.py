"""Sequence packing: packed SFT rows give each example exactly the logits and loss it has alone, first-fit
respects the row length, batches are deterministic and resume mid-epoch; pretraining rows lose no token."""

import pytest
import torch

from pipeline.models import build_model, train_tokenizer
from sft.packing import (
    IGNORE,
    DocumentPacker,
    SFTBatches,
    TokenizedExample,
    collate_packed,
    collate_padded,
    first_fit,
    row_position_ids,
    supports_packed_attention,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    tok = train_tokenizer([f"{a} plus {b} is {a + b}." for a in range(10) for b in range(10)], vocab_size=300)
    return build_model(tok, hidden_size=32, num_layers=2, num_heads=2, seed=0).eval()


def _examples(n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(4, 20, (1,), generator=g))
        ids = torch.randint(5, 200, (length,), generator=g).tolist()
        prompt = int(torch.randint(1, length - 1, (1,), generator=g))
        out.append(TokenizedExample(ids, [IGNORE] * prompt + ids[prompt:]))
    return out


def test_first_fit_respects_capacity_and_keeps_every_example():
    lengths = [5, 9, 3, 7, 2, 8, 4]
    bins = first_fit(lengths, list(range(7)), max_len=10)
    assert sorted(i for b in bins for i in b) == list(range(7))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert bins == [[0, 2, 4], [1], [3], [5], [6]]  # each example goes to the first row with room
    with pytest.raises(ValueError, match="more than max_len"):
        first_fit([11], [0], max_len=10)


def test_packed_rows_do_not_cross_contaminate(model):
    """Every example's logits in a packed row equal its logits alone (block-diagonal attention)."""
    exs = _examples()
    rows = first_fit([len(e) for e in exs], list(range(len(exs))), max_len=40)
    assert any(len(r) > 1 for r in rows), "the test needs rows with several examples"
    batch = collate_packed(exs, rows, pad_id=0)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        for r, row in enumerate(rows):
            off = 0
            for i in row:
                n = len(exs[i])
                alone = model(input_ids=torch.tensor([exs[i].input_ids]), use_cache=False).logits[0]
                torch.testing.assert_close(packed[r, off:off + n], alone, atol=1e-5, rtol=1e-4)
                off += n


def test_packed_loss_is_the_token_mean_of_the_examples(model):
    exs = _examples()
    rows = first_fit([len(e) for e in exs], list(range(len(exs))), max_len=40)
    with torch.no_grad():
        packed = model(**collate_packed(exs, rows, pad_id=0), use_cache=False).loss
        padded = model(**collate_padded(exs, [[i] for i in range(len(exs))], pad_id=0), use_cache=False).loss
        total, count = 0.0, 0
        for e in exs:
            ids, labels = torch.tensor([e.input_ids]), torch.tensor([e.labels])
            n = int((labels[0, 1:] != IGNORE).sum())
            total += float(model(input_ids=ids, labels=labels, use_cache=False).loss) * n
            count += n
    assert float(packed) == pytest.approx(total / count, rel=1e-4)
    assert float(padded) == pytest.approx(total / count, rel=1e-4)


def test_padding_tail_and_boundaries_carry_no_loss():
    exs = [TokenizedExample([1, 2, 3], [IGNORE, 2, 3]), TokenizedExample([4, 5], [IGNORE, 5])]
    b = collate_packed(exs, [[0, 1], [1]], pad_id=0)
    assert b["input_ids"].tolist() == [[1, 2, 3, 4, 5], [4, 5, 0, 0, 0]]
    assert b["labels"].tolist() == [[IGNORE, 2, 3, IGNORE, 5], [IGNORE, 5, IGNORE, IGNORE, IGNORE]]
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]]
    p = collate_padded(exs, [[0], [1]], pad_id=0)
    assert p["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert p["labels"].tolist() == [[IGNORE, 2, 3], [IGNORE, 5, IGNORE]]


def test_supports_packed_attention_probe(model):
    assert supports_packed_attention(model)


@pytest.mark.parametrize("packing", [True, False])
def test_sft_batches_deterministic_and_resumable(packing):
    exs = _examples(40, seed=1)
    kw = dict(max_len=48, micro_batch_size=3, pad_id=0, packing=packing, seed=7)
    a, b = SFTBatches(exs, **kw), SFTBatches(exs, **kw)
    seq_a = [a.next_batch() for _ in range(16)]  # crosses an epoch boundary
    assert a.epoch >= 1
    for _ in range(5):
        b.next_batch()
    resumed = SFTBatches(exs, **kw)
    resumed.load_state_dict(b.state_dict())
    for want in seq_a[5:]:
        got = resumed.next_batch()
        assert got.keys() == want.keys()
        for k in want:
            assert torch.equal(got[k], want[k]), k
    # a different seed orders the data differently
    other = SFTBatches(exs, **{**kw, "seed": 8}).next_batch()
    assert not torch.equal(other["input_ids"][:, :5], seq_a[0]["input_ids"][:, :5])


def test_data_parallel_ranks_split_the_global_rows():
    exs = _examples(40, seed=2)
    kw = dict(max_len=48, micro_batch_size=2, pad_id=0, packing=True, seed=0)
    single = SFTBatches(exs, **{**kw, "micro_batch_size": 4})
    ranks = [SFTBatches(exs, **kw, rank=r, world_size=2) for r in range(2)]
    for _ in range(3):
        whole = single.next_batch()["input_ids"]
        parts = [r.next_batch()["input_ids"] for r in ranks]
        width = whole.shape[1]
        got = torch.cat([torch.nn.functional.pad(p, (0, width - p.shape[1])) for p in parts])
        assert torch.equal(got, whole)
    assert ranks[0].state_dict() == ranks[1].state_dict() == single.state_dict()


class _Docs:
    def __init__(self, texts):
        self.texts, self.pos = texts, 0

    def next_text(self):
        t = self.texts[self.pos % len(self.texts)]
        self.pos += 1
        return t

    def state_dict(self):
        return {"pos": self.pos}

    def load_state_dict(self, s):
        self.pos = s["pos"]


def test_document_packer_loses_no_token_and_restarts_positions():
    tok = train_tokenizer([f"doc {i} has {i * 7} words" for i in range(30)], vocab_size=300)
    texts = [f"doc {i} has {i * 7} words" * (i % 4 + 1) for i in range(9)]
    packer = DocumentPacker(_Docs(texts), tok, seq_len=16, document_masking=True)
    rows = [packer.next_item() for _ in range(12)]
    stream = [t for r in rows for t in r["input_ids"]]
    expected = [t for txt in texts for t in tok(txt)["input_ids"] + [tok.eos_token_id]]
    n = min(len(stream), len(expected))
    assert stream[:n] == expected[:n] and n >= len(expected) - 16
    for r in rows:
        assert len(r["input_ids"]) == 16
        # a document starts right after every EOS inside a row: its position restarts at 0
        for j in range(1, 16):
            if r["input_ids"][j - 1] == tok.eos_token_id:
                assert r["position_ids"][j] == 0
    # resume mid-stream gives the same rows
    clone = DocumentPacker(_Docs(texts), tok, seq_len=16, document_masking=True)
    half = DocumentPacker(_Docs(texts), tok, seq_len=16, document_masking=True)
    for _ in range(5):
        half.next_item()
    clone.load_state_dict(half.state_dict())
    assert [clone.next_item() for _ in range(7)] == rows[5:]


def test_row_position_ids():
    assert row_position_ids([0, 3], 6) == [0, 1, 2, 0, 1, 2]
    assert row_position_ids([4], 6) == [0, 1, 2, 3, 0, 1]

"""Sequence packing for pretraining and SFT (DeepSeekMath §2.3, §3.1), and the fallback to padding.

Pretraining (`DocumentPacker`): documents are tokenized, closed with EOS and concatenated into one
stream that is cut into rows of exactly `seq_len` tokens; a document that does not fit continues in the
next row, so no token is wasted. With `document_masking` every row carries `position_ids` that restart
at 0 where a document starts, which keeps a token from attending to other documents.

SFT (`SFTBatches`): examples are packed first-fit (in a seeded order) into rows of at most `max_len`
tokens, each example with its own `position_ids` from 0. Transformers' Llama (and most decoder models)
turn restarting `position_ids` with no `attention_mask` into a block-diagonal causal mask: varlen kernels
under flash-attention 2, a 4D mask under sdpa/eager (`transformers.masking_utils.find_packed_sequence_indices`),
so packed examples never see each other. `supports_packed_attention` checks this for a given model with
one tiny forward pass; a model that fails it trains on padded rows instead (one example per row,
right-padded, `attention_mask`). The row tail after the last example is padding with its own position
run (a separate "sequence" that carries no loss).

Measured by benchmarks/bench_training.py (one CPU thread, tiny model, world-like example lengths): see
`sft_packed` vs `sft_padded` in results/bench/training.json; padded rows spend compute on pad tokens and
the packed mask costs nothing measurable at these sizes, so `auto` packs whenever the model allows it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

IGNORE = -100  # label of a token that carries no loss (the value transformers' loss ignores)


# ---------------------------------------------------------------------------------------------------
# Pretraining


def row_position_ids(doc_starts: list[int], seq_len: int) -> list[int]:
    """Positions of one row: 0.. from the row start, restarting at 0 at each document start."""
    pos, p = [], 0
    starts = set(doc_starts)
    for i in range(seq_len):
        if i in starts:
            p = 0
        pos.append(p)
        p += 1
    return pos


class DocumentPacker:
    """Rows of `seq_len` tokens cut from the stream of tokenized documents of one `TextSource`.

    Each document is `tokenizer(text)` (BOS included where the tokenizer adds one) followed by EOS.
    State = the source's position plus the tokens already read but not yet emitted.
    """

    def __init__(self, source, tokenizer, seq_len: int, *, document_masking: bool = False):
        if seq_len < 2:
            raise ValueError(f"seq_len must be >= 2, got {seq_len}")
        self.source, self.tok, self.seq_len = source, tokenizer, int(seq_len)
        self.document_masking = document_masking
        self.eos = tokenizer.eos_token_id
        if self.eos is None:
            raise ValueError("pretraining needs a tokenizer with an EOS token to separate documents")
        self.buffer: list[int] = []
        self.starts: list[int] = []  # offsets in `buffer` where a document starts
        self.tokens_read = 0

    def _read_document(self) -> None:
        ids = self.tok(self.source.next_text())["input_ids"]
        if not ids or ids[-1] != self.eos:
            ids = list(ids) + [self.eos]
        self.starts.append(len(self.buffer))
        self.buffer.extend(ids)
        self.tokens_read += len(ids)

    def next_item(self) -> dict:
        """{"input_ids": list[int] of seq_len, "position_ids": list[int] or None}."""
        while len(self.buffer) < self.seq_len:
            self._read_document()
        row, self.buffer = self.buffer[: self.seq_len], self.buffer[self.seq_len:]
        row_starts = [s for s in self.starts if s < self.seq_len]
        self.starts = [s - self.seq_len for s in self.starts if s >= self.seq_len]
        pos = row_position_ids(row_starts, self.seq_len) if self.document_masking else None
        return {"input_ids": row, "position_ids": pos}

    def state_dict(self) -> dict:
        return {"source": self.source.state_dict(), "buffer": list(self.buffer), "starts": list(self.starts),
                "tokens_read": self.tokens_read}

    def load_state_dict(self, state: dict) -> None:
        self.source.load_state_dict(state["source"])
        self.buffer, self.starts = list(state["buffer"]), list(state["starts"])
        self.tokens_read = int(state["tokens_read"])


def collate_rows(rows: list[dict]):
    """Pretraining micro-batch: input_ids (B, T) as labels; position_ids (B, T) under document masking."""
    batch = {"input_ids": torch.tensor([r["input_ids"] for r in rows], dtype=torch.long)}
    if rows and rows[0].get("position_ids") is not None:
        batch["position_ids"] = torch.tensor([r["position_ids"] for r in rows], dtype=torch.long)
    batch["labels"] = batch["input_ids"].clone()
    return batch


# ---------------------------------------------------------------------------------------------------
# SFT


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE where the token carries no loss

    def __len__(self) -> int:
        return len(self.input_ids)


def first_fit(lengths: list[int], order: list[int], max_len: int) -> list[list[int]]:
    """Pack example indices, taken in `order`, into bins of total length <= max_len (first fit)."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        if n > max_len:
            raise ValueError(f"example {i} has {n} tokens, more than max_len={max_len}")
        for b, r in enumerate(room):
            if n <= r:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(max_len - n)
    return bins


def collate_packed(examples: list[TokenizedExample], rows: list[list[int]], pad_id: int):
    """Packed micro-batch: every row holds several examples, each with position_ids from 0; no
    attention_mask (the restarts make the mask block-diagonal). Rows are padded to the longest row."""
    width = max(sum(len(examples[i]) for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)  # (B, T)
    pos = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    for r, row in enumerate(rows):
        off = 0
        for i in row:
            ex = examples[i]
            n = len(ex)
            ids[r, off:off + n] = torch.tensor(ex.input_ids)
            labels[r, off:off + n] = torch.tensor(ex.labels)
            pos[r, off:off + n] = torch.arange(n)
            off += n
        pos[r, off:] = torch.arange(width - off)  # the padding tail is its own sequence
    return {"input_ids": ids, "labels": labels, "position_ids": pos}


def collate_padded(examples: list[TokenizedExample], rows: list[list[int]], pad_id: int):
    """Padded micro-batch: one example per row, right-padded, with an attention_mask."""
    if any(len(row) != 1 for row in rows):
        raise ValueError("padded batches hold exactly one example per row")
    width = max(len(examples[row[0]]) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (i,) in enumerate(rows):
        n = len(examples[i])
        ids[r, :n] = torch.tensor(examples[i].input_ids)
        labels[r, :n] = torch.tensor(examples[i].labels)
        mask[r, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class SFTBatches:
    """The SFT data source for `TrainLoop`: endless epochs of micro-batches over a fixed example set.

    Each epoch shuffles the examples with (seed, epoch), packs them into rows (or one per row when
    `packing` is off) and cuts the rows into micro-batches of `micro_batch_size` rows per process.
    Under data parallelism every process walks the same global sequence of rows and takes its own
    slice, so the position (epoch, cursor) is the same on every rank.
    """

    def __init__(self, examples: list[TokenizedExample], *, max_len: int, micro_batch_size: int, pad_id: int,
                 packing: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1):
        if not examples:
            raise ValueError("no SFT examples to train on")
        self.examples, self.max_len, self.mbs = examples, int(max_len), int(micro_batch_size)
        self.pad_id, self.packing, self.seed = pad_id, packing, int(seed)
        self.rank, self.world = rank, world_size
        self.lengths = [len(e) for e in examples]
        self.epoch, self.cursor = 0, 0
        self._rows: list[list[int]] | None = None
        self._rows_epoch = -1

    def rows(self) -> list[list[int]]:
        """This epoch's rows (lists of example indices); deterministic in (seed, epoch)."""
        if self._rows_epoch != self.epoch:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.examples)).tolist()
            if self.packing:
                bins = first_fit(self.lengths, order, self.max_len)
                # first fit leaves its fullest rows first; shuffle rows so batches are alike
                perm = np.random.default_rng([self.seed, self.epoch, 1]).permutation(len(bins))
                self._rows = [bins[i] for i in perm]
            else:
                self._rows = [[i] for i in order]
            self._rows_epoch = self.epoch
        return self._rows  # type: ignore[return-value]

    def rows_per_epoch(self) -> int:
        return len(self.rows())

    def next_batch(self):
        step_rows = self.mbs * self.world
        rows = self.rows()
        if self.cursor + step_rows > len(rows):  # drop the ragged end of an epoch
            if step_rows > len(rows):
                raise ValueError(f"{len(rows)} rows per epoch is fewer than one micro-batch of "
                                 f"{step_rows} rows; lower sft.micro_batch_size")
            self.epoch, self.cursor = self.epoch + 1, 0
            rows = self.rows()
        mine = rows[self.cursor + self.rank * self.mbs: self.cursor + (self.rank + 1) * self.mbs]
        self.cursor += step_rows
        collate = collate_packed if self.packing else collate_padded
        return collate(self.examples, mine, self.pad_id)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])


def supports_packed_attention(model) -> bool:
    """Whether `model` isolates packed sequences given restarting position_ids (one tiny forward pass).

    Runs two short sequences separately and packed in one row; packing is supported when the second
    sequence's logits are the same either way (it cannot see the first).
    """
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, vocab, (1, 5), generator=g)
    b = torch.randint(0, vocab, (1, 6), generator=g)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            alone = model(input_ids=b.to(device), use_cache=False).logits.float()
            packed = model(input_ids=torch.cat([a, b], 1).to(device),
                           position_ids=torch.cat([torch.arange(5), torch.arange(6)])[None].to(device),
                           use_cache=False).logits.float()[:, 5:]
    except (TypeError, ValueError, RuntimeError) as e:
        log.info("packed attention probe failed (%s): falling back to padding", e)
        return False
    finally:
        model.train(was_training)
    tol = 1e-3 if alone.dtype == torch.float32 and next(model.parameters()).dtype == torch.float32 else 5e-2
    ok = bool(torch.allclose(alone, packed, atol=tol, rtol=tol))
    log.info("packed attention (position_ids restarts) %s for %s", "supported" if ok else "NOT supported",
             type(model).__name__)
    return ok

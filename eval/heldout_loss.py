"""`python -m eval.heldout_loss`: a checkpoint's per-token negative log-likelihood on held-out math text.

    python -m eval.heldout_loss --config results/tiny/config.yaml --model results/tiny/pretrain/mined/model \
        --tokenizer results/tiny/tokenizer --data results/tiny/world/problems/rl.jsonl \
        --out results/tiny/eval/pretrain/heldout_loss.json

The corpus-quality experiment's third measurement beside few-shot accuracy before and after SFT (paper
§2.2): the same model trained on two corpora, scored on math text neither saw. Each JSONL record's text is
its `field` value (a list of fields is joined with newlines: the world's problems are question + CoT
solution; a real held-out set is a `text` field). The text is scored as pretraining saw a document: after
the EOS that separates documents in the packed stream (sft/packing.py). Its first token is context, not
scored (as Hugging Face's `labels` loss does): after an EOS it is a guess at which document comes next, not
a measure of the text (measured on tiny's mined model: ~9 nats for a question's first word against 0.5 per
token for the rest, 20% of the total over 300 problems). Every further token is scored, up to `max_tokens`.
A record without the field, or with empty text, is skipped and counted, naming its file:line.

Output (JSON): tokens, documents, nats_per_token (sum of NLL over all scored tokens / their number), the
skipped records, and per-document [nll_sum, tokens] in file order, so that two arms scored on the same file
with the same tokenizer give a paired difference (pipeline/report_headline.heldout_difference).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from pipeline.config import check_no_placeholders, load_config, schema_defaults, set_threads, setup_logging
from pipeline.io import read_jsonl, write_json
from pipeline.models import load_model, load_tokenizer

log = logging.getLogger("eval.heldout_loss")


def read_texts(path: str | Path, field: str | list[str], limit: int | None = None) -> tuple[list[str], list[str]]:
    """(texts, skipped): the first `limit` usable records' text and a "file:line: reason" per skipped one.
    A list of fields is joined with newlines; every one must be a non-empty string."""
    fields = [field] if isinstance(field, str) else list(field)
    texts, skipped = [], []

    def on_skip(reason: str, where: str) -> None:
        skipped.append(f"{where}: {reason}")

    for where, rec in read_jsonl(path, strict=False, on_skip=on_skip, with_location=True):
        if limit is not None and len(texts) >= limit:
            break
        if not isinstance(rec, dict):
            skipped.append(f"{where}: not a JSON object")
            continue
        missing = [f for f in fields if not isinstance(rec.get(f), str)]
        if missing:
            skipped.append(f"{where}: no text field {missing[0]!r}")
            continue
        text = "\n".join(rec[f] for f in fields)
        if not text.strip():
            skipped.append(f"{where}: empty text")
            continue
        texts.append(text)
    return texts, skipped


def encode(tokenizer, text: str, max_tokens: int) -> tuple[list[int], int, bool]:
    """(input ids, context length, truncated): the document separator (EOS), the text's first token
    (and a BOS the tokenizer adds itself) as context, then at most `max_tokens` scored tokens."""
    ids = tokenizer(text)["input_ids"]
    context = [tokenizer.eos_token_id]
    if ids and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id:
        context.append(ids[0])
        ids = ids[1:]
    context, ids = context + ids[:1], ids[1:]
    return context + ids[:max_tokens], len(context), len(ids) > max_tokens


@torch.no_grad()
@torch.inference_mode()
def document_nll(model, batch: list[tuple[list[int], int]], pad_id: int) -> list[tuple[float, int]]:
    """[(sum of -log p(token | prefix) over the scored tokens, their number)] for each (ids, context) of a
    batch, right-padded with an attention mask. Each token's NLL (logsumexp of its logits minus the target's
    logit) is computed on the model's device in float32, and only those (batch, length) values leave it:
    a float64 log-softmax on the CPU would copy batch x length x vocabulary doubles (6.5 GB for 16 x 512
    tokens of a 100k vocabulary). Sums are float64."""
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    scored = torch.zeros((len(batch), width - 1), dtype=torch.bool)  # target positions 1..width-1
    for i, (ids, ctx) in enumerate(batch):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1
        scored[i, ctx - 1: len(ids) - 1] = True
    input_ids = input_ids.to(model.device)
    logits = model(input_ids=input_ids, attention_mask=mask.to(model.device)).logits[:, :-1].float()
    token_nll = torch.logsumexp(logits, dim=-1) - logits.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    nll = torch.where(scored, token_nll.cpu().double(), 0.0).sum(dim=1)  # padding's NLL may be inf
    return [(float(nll[i]), int(scored[i].sum())) for i in range(len(batch))]


def heldout_loss(model, tokenizer, texts: list[str], *, batch_size: int = 16, max_tokens: int = 512) -> dict:
    """Per-document NLL sums and token counts in text order, and their totals (see the module doc)."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit:
        max_tokens = min(max_tokens, limit - 3)  # room for the context: EOS, (BOS,) first token
    encoded = [encode(tokenizer, t, max_tokens) for t in texts]
    truncated = sum(e[2] for e in encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))  # similar lengths share a batch
    per_doc: list[tuple[float, int] | None] = [None] * len(encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(order), batch_size):
        idx = order[start: start + batch_size]
        for i, res in zip(idx, document_nll(model, [encoded[i][:2] for i in idx], pad)):
            per_doc[i] = res
    tokens = sum(n for _, n in per_doc)
    nll = sum(s for s, _ in per_doc)
    return {"tokens": tokens, "documents": len(per_doc), "nats_per_token": nll / tokens if tokens else None,
            "nll_sum": nll, "truncated_documents": int(truncated), "max_tokens": max_tokens,
            "unscored_documents": sum(n == 0 for _, n in per_doc),  # one-token texts: nothing after the context
            "per_document": [[s, n] for s, n in per_doc]}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.heldout_loss", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="resolved config (results/<name>/config.yaml): its eval.heldout section")
    p.add_argument("--model", required=True, help="model folder (save_pretrained) or hub id")
    p.add_argument("--tokenizer", help="tokenizer folder [the model's]")
    p.add_argument("--data", help="held-out JSONL [eval.heldout.data]")
    p.add_argument("--field", nargs="+", help="record field(s) holding the text, joined by newlines [eval.heldout.field]")
    p.add_argument("--limit", type=int, help="score only the first N usable records [eval.heldout.limit]")
    p.add_argument("--batch-size", type=int, help="documents per forward pass [eval.heldout.batch_size]")
    p.add_argument("--max-tokens", type=int, help="scored tokens per document [eval.heldout.max_tokens]")
    p.add_argument("--threads", type=int, default=1, help="torch threads [1]")
    p.add_argument("--device", help="torch device [cuda when available, else cpu]")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    settings = dict(schema_defaults("eval.heldout"))
    if args.config:
        cfg = load_config(args.config)
        check_no_placeholders(cfg, args.config, ("eval",))
        settings.update({k: v for k, v in ((cfg.get("eval") or {}).get("heldout") or {}).items() if v is not None})
    for key in ("data", "field", "limit", "batch_size", "max_tokens"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if not settings.get("data"):
        raise SystemExit("no held-out data: pass --data or set eval.heldout.data")
    if not Path(settings["data"]).exists():
        raise SystemExit(f"{settings['data']}: held-out data file not found")
    set_threads(args.threads)
    t0 = time.process_time()
    texts, skipped = read_texts(settings["data"], settings["field"], settings.get("limit"))
    for s in skipped[:20]:
        log.warning("skipped %s", s)
    if not texts:
        raise SystemExit(f"{settings['data']}: no usable record ({len(skipped)} skipped)")
    tokenizer = load_tokenizer(args.tokenizer or args.model)
    model = load_model(args.model, device=args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    result = heldout_loss(model, tokenizer, texts, batch_size=settings["batch_size"], max_tokens=settings["max_tokens"])
    result.update({"model": str(args.model), "data": str(settings["data"]), "field": settings["field"],
                   "skipped": len(skipped), "skipped_records": skipped[:100], "cpu_s": time.process_time() - t0})
    write_json(args.out, result)
    log.info("%s: %.4f nats/token over %d tokens of %d documents (%d skipped, %d truncated) in %.1f CPU s -> %s",
             args.model, result["nats_per_token"], result["tokens"], result["documents"], len(skipped),
             result["truncated_documents"], result["cpu_s"], args.out)
    return result


if __name__ == "__main__":
    main()

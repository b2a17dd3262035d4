"""The tokenizer every model of a run shares (pretrain, SFT, RL, eval).

    python -m sft.tokenizer --config config/tiny.yaml --corpus results/tiny/corpus/final \\
        --problems results/tiny/world/problems/sft.jsonl --out results/tiny/tokenizer

From scratch (the embedded default): a byte-level BPE (`pipeline.models.train_tokenizer`, every digit
its own token) trained on the mined corpus plus the SFT problems' text, so the words of the questions,
the three response formats (CoT/PoT/tool, paper §3.1) and the prompt instructions are whole tokens. The
same tokenizer serves both arms of the corpus-quality experiment (§2.2), as in the paper.

From a base model (`tokenizer.pretrained`, paper: DeepSeek-Coder-Base-v1.5's tokenizer): loaded as is;
when it has no chat template, a plain one in DeepSeekMath-Instruct's layout is added
("User: ...\\n\\nAssistant: ...<eos>"), so SFT, RL and eval all build prompts the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from grading.prompts import FORMATS, user_message
from pipeline.config import setup, stage_parser
from pipeline.io import atomic_path, read_jsonl, write_run_record
from pipeline.models import load_tokenizer, train_tokenizer
from sft.mixture import local_files, read_texts

log = logging.getLogger(__name__)

# For a base tokenizer without one: DeepSeekMath-Instruct's layout, closed by the tokenizer's own EOS.
PLAIN_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n\n"
    "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'] }}{{ eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def ensure_chat_template(tokenizer):
    """Give `tokenizer` a chat template if it has none (see module doc); returns it."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
        log.info("tokenizer had no chat template: added DeepSeekMath-Instruct's plain User/Assistant layout")
    return tokenizer


def training_texts(corpus: str | Path, problems: list[str | Path], max_docs: int | None = None) -> Iterator[str]:
    """The corpus documents (up to `max_docs`), then the SFT records' text (the world's question/cot/pot/tool
    fields, or every string field of records without them), then the prompt instructions of each format."""
    n_docs = 0
    for path in local_files(corpus):
        texts, bad = read_texts(path, "text")
        if bad:
            log.warning("%s: %d records without text skipped (first: %s)", path, len(bad), bad[0])
        for t in texts:
            if max_docs is not None and n_docs >= max_docs:
                break
            n_docs += 1
            yield t
    n_problems = 0
    for path in problems:
        for rec in _records(Path(path)):
            keys = [k for k in ("question", *FORMATS) if k in rec] or list(rec)  # world fields, else all
            yield from (rec[k] for k in keys if isinstance(rec[k], str))
            n_problems += 1
    for fmt in FORMATS:
        yield user_message("", fmt)
    log.info("tokenizer training texts: %d corpus documents, %d SFT problems", n_docs, n_problems)


def _records(path: Path) -> Iterator[dict]:
    if path.suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            yield from batch.to_pylist()
    else:
        yield from read_jsonl(path)


def build_tokenizer(cfg: dict, corpus: str | Path | None, problems: list[str | Path]):
    """Train (or load, for `tokenizer.pretrained`) the run's tokenizer from the `tokenizer:` config."""
    tcfg = cfg["tokenizer"]
    if tcfg.get("pretrained"):
        return ensure_chat_template(load_tokenizer(tcfg["pretrained"]))
    if corpus is None or not problems:
        raise ValueError("training a tokenizer needs --corpus and at least one --problems file "
                         "(or set tokenizer.pretrained to use a base model's tokenizer)")
    return train_tokenizer(training_texts(corpus, problems, tcfg.get("max_corpus_docs")),
                           vocab_size=tcfg["vocab_size"], min_frequency=tcfg["min_frequency"])


def main(argv: list[str] | None = None) -> None:
    p = stage_parser(__doc__.split("\n\n")[0])
    p.add_argument("--corpus", help="mined corpus: folder of Parquet shards, column text (not needed with "
                   "tokenizer.pretrained)")
    p.add_argument("--problems", action="append", default=[],
                   help="SFT data file (JSONL/Parquet, e.g. world/problems/sft.jsonl); repeatable")
    p.add_argument("--out", required=True, help="output folder (save_pretrained format)")
    args = p.parse_args(argv)
    cfg = setup(args)
    tok = build_tokenizer(cfg, args.corpus, args.problems)
    with atomic_path(args.out) as tmp:
        tok.save_pretrained(tmp)
        write_run_record(tmp, "sft.tokenizer", cfg, vocab_size=len(tok), corpus=args.corpus,
                         problems=args.problems)
    log.info("saved tokenizer (%d tokens) to %s", len(tok), args.out)


if __name__ == "__main__":
    main()

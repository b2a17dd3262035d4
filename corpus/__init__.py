"""The corpus stage (DeepSeekMath §2.1): Common Crawl -> math corpus, as Snakemake jobs (pipeline/rules/corpus.smk).

One record type (`document.Document`) flows through generator blocks, every filter drops with a
reason, every step writes a stats file (`filters.StepStats`). Modules, in pipeline order:

    sources.py        seed pages, benchmark texts, Common Crawl listing/file downloads   (CLI)
    warc.py           WARC/WET reading with FastWARC; malformed records/files skipped, counted, named
    extract.py        the extract step: pages -> documents + MinHash signatures        (CLI: per shard)
    html_text.py      HTML -> text with math kept as LaTeX (mathml.py converts MathML)
    extract_guard.py  deep/huge pages extracted in a child process under time and memory limits
    dedup.py          URL normalisation, MinHash signatures, the single-job LSH reference  (CLI)
    dedup_shards.py   near-dedup as a fan-out: url job -> band-range jobs -> merge          (CLI: per job)
    decontaminate.py  NgramMatcher: benchmark n-gram decontamination (shared with SFT)
    pool.py           dedup decisions + decontamination -> the candidate pool            (CLI: per shard)
    classifier.py     fastText math classifier: train per round, score per shard          (CLI)
    domains.py        math domains and pluggable URL-path annotators
    rounds.py         per-round selection, next positives/negatives, convergence         (CLI: per round)
    export.py         corpus/final and corpus/web_text Parquet parts                      (CLI)
    funnel.py         funnel.json + funnel.md from the stats files                         (CLI)
"""

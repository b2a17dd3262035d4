"""pipeline/rules/corpus.smk builds the right DAG for each source, without network at DAG-build time:
one job per shard for extract/pool/score, one per round for train/select, downloads for Common Crawl."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus_samples" / "warc"


def dry_run(tmp_path: Path, config: dict) -> dict[str, int]:
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text("".join(f'include: "{ROOT}/pipeline/rules/{f}.smk"\n' for f in ("common", "world", "corpus")))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({**config, "results_root": str(tmp_path / "results")}))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(ROOT), "--configfile",
                           str(cfg), "-n", "corpus"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = proc.stdout.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def config_section(name: str) -> dict:
    return yaml.safe_load((ROOT / f"config/{name}.yaml").read_text())


def test_world_source_dag(tmp_path):
    cfg = config_section("smoke")
    jobs = dry_run(tmp_path, cfg)
    shards, rounds = cfg["world"]["web"]["shards"], cfg["corpus"]["rounds"]["max_rounds"]
    assert jobs["world_web"] == 1 and jobs["corpus_extract"] == shards and jobs["corpus_pool"] == shards
    assert jobs["corpus_train"] == rounds and jobs["corpus_select"] == rounds
    assert jobs["corpus_score"] == shards * rounds
    assert jobs["corpus_dedup"] == jobs["corpus_final"] == jobs["corpus_web_text"] == jobs["corpus_funnel"] == 1
    assert "corpus_cc_download" not in jobs


def test_common_crawl_source_dag_needs_no_network(tmp_path):
    cfg = config_section("deepseekmath")
    cfg["corpus"]["commoncrawl"]["num_files"] = 3
    jobs = dry_run(tmp_path, cfg)
    assert jobs["corpus_cc_listing"] == 1 and jobs["corpus_cc_download"] == 3 and jobs["corpus_extract"] == 3
    assert "world_web" not in jobs and "world_problems" not in jobs  # hub seed and benchmarks: no world
    assert jobs["corpus_score"] == 3 * cfg["corpus"]["rounds"]["max_rounds"]


@pytest.mark.shared
@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} absent (shared real-data samples)")
def test_files_source_dag(tmp_path):
    cfg = config_section("smoke")
    cfg["corpus"]["source"] = "files"
    cfg["corpus"]["files"] = [str(SAMPLES / "*.warc.gz"), str(SAMPLES / "*.wet.gz")]
    jobs = dry_run(tmp_path, cfg)
    n_files = len(set(SAMPLES.glob("*.warc.gz")) | set(SAMPLES.glob("*.wet.gz")))
    assert jobs["corpus_extract"] == n_files and "corpus_cc_download" not in jobs

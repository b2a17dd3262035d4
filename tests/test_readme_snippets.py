"""Every YAML block of the README is a real config fragment: merged over config/deepseekmath.yaml (the
config the README's examples extend) it validates against the schema, and every key it names is a key
the schema knows (a misspelt key must fail, not be ignored)."""

import re
from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config, read_yaml, validate

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.S | re.M)


def yaml_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


BLOCKS = yaml_blocks(README.read_text())


def test_the_readme_has_yaml_snippets():
    assert BLOCKS, "README.md has no ```yaml block (the extractor or the README changed)"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_yaml_snippet_validates(index):
    snippet = read_yaml(BLOCKS[index])
    assert isinstance(snippet, dict), f"README yaml block {index} is not a mapping"
    base = load_config(ROOT / "config" / "deepseekmath.yaml")
    validate(merged(base, snippet), source=f"README.md yaml block {index}")


def test_the_check_catches_a_wrong_key():
    """The old README snippet's `hub_id` (not a schema key) is refused, so the test above can fail."""
    base = load_config(ROOT / "config" / "deepseekmath.yaml")
    wrong = {"corpus": {"seed": {"hub_id": "open-web-math/open-web-math", "split": "train"}}}
    with pytest.raises(ConfigError, match="hub_id"):
        validate(merged(base, wrong), source="wrong snippet")


def test_extractor_finds_each_block():
    text = "intro\n```yaml\na: 1\n```\nmiddle\n```yml\nb: [2]\n```\n```python\nc = 3\n```\n"
    assert [read_yaml(b) for b in yaml_blocks(text)] == [{"a": 1}, {"b": [2]}]

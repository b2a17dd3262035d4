"""SFT response formats (paper §3.1): template checks, tool-output spans, the chat-template round trip,
and the response-only loss mask (exactly the response tokens, EOS included, carry loss)."""

import pytest

from grading.prompts import build_prompt, user_message
from pipeline.models import train_tokenizer
from sft.data import SFTExample, render, tokenize_example
from sft.formats import boxed_answer, check_response, gsm8k_solution_to_cot, masked_spans
from sft.packing import IGNORE
from sft.tokenizer import PLAIN_CHAT_TEMPLATE, ensure_chat_template

QUESTION = "Tom has 5 apples. He buys 3 more. How many apples does Tom have?"
COT = "Tom has 5 apples. He buys 3 more, so he has 5 + 3 = 8 apples. The answer is \\boxed{8}"
POT = "```python\napples = 5\napples = apples + 3\nprint(apples)\n```"
TOOL = ("Tom has 5 apples. He buys 3 more.\n```python\nprint(5 + 3)\n```\n```output\n8\n```\n"
        "He has 8 apples.\n```python\nprint(8 * 1)\n```\n```output\n8\n```\nThe answer is \\boxed{8}")
RESPONSES = {"cot": COT, "pot": POT, "tool": TOOL}


@pytest.fixture(scope="module")
def tok():
    texts = [QUESTION, COT, POT, TOOL] * 5 + [user_message("", f) for f in RESPONSES]
    return train_tokenizer(texts, vocab_size=400)


@pytest.mark.parametrize("fmt,response,reason", [
    ("cot", COT, None),
    ("cot", "so he has 8 apples.", "no \\boxed{}"),
    ("pot", POT, None),
    ("pot", "```python\nx = 1\n```", "never prints"),
    ("pot", POT + "\n" + POT, "exactly one"),
    ("tool", TOOL, None),
    ("tool", "Add.\n```python\nprint(1)\n```\nThe answer is \\boxed{1}", "1 python blocks but 0 output"),
    ("tool", "Add.\n```python\nprint(1)\n```\n```output\n1\n```\nSo it is 1.", "no \\boxed{}"),
    ("tool", "Add.\n```python\nprint(1)\n```\nwords\n```output\n1\n```\n\\boxed{1}", "follow its ```python"),
    ("cot", "   ", "empty"),
    ("essay", COT, "unknown format"),
])
def test_check_response(fmt, response, reason):
    got = check_response(fmt, response)
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got


def test_boxed_answer_balances_braces():
    assert boxed_answer("x \\boxed{\\frac{3}{4}} y") == "\\frac{3}{4}"
    assert boxed_answer("\\boxed{1} then \\boxed{(4, 4)}") == "(4, 4)"
    assert boxed_answer("\\boxed{unclosed") is None


def test_masked_spans_cover_exactly_the_harness_text():
    spans = masked_spans("tool", TOOL)
    assert [TOOL[a:b] for a, b in spans] == ["\n8\n```\n", "\n8\n```\n"]
    # what the model writes is everything else: it opens the output block, the harness fills it
    kept = "".join(TOOL[a:b] for a, b in zip([0] + [e for _, e in spans], [s for s, _ in spans] + [len(TOOL)]))
    assert kept.count("```output") == 2 and "\n8\n```\n" not in kept
    assert masked_spans("cot", COT) == [] and masked_spans("pot", POT) == []


def test_gsm8k_solution_to_cot():
    cot = gsm8k_solution_to_cot("He gives 1 to Tom, so he has 3 - 1 = <<3-1=2>>2 apples.\n#### 2")
    assert cot == "He gives 1 to Tom, so he has 3 - 1 = 2 apples.\nThe answer is \\boxed{2}"
    assert check_response("cot", cot) is None
    assert gsm8k_solution_to_cot("total\n#### 1,234").endswith("\\boxed{1234}")
    with pytest.raises(ValueError, match="####"):
        gsm8k_solution_to_cot("no final line")


@pytest.mark.parametrize("fmt", ["cot", "pot", "tool"])
def test_chat_template_round_trip(tok, fmt):
    """The saved chat template renders [user, assistant] as the eval prompt + response + EOS."""
    prompt = build_prompt(QUESTION, fmt, tok)
    full = tok.apply_chat_template([{"role": "user", "content": user_message(QUESTION, fmt)},
                                    {"role": "assistant", "content": RESPONSES[fmt]}], tokenize=False)
    assert full == prompt + RESPONSES[fmt] + tok.eos_token + "\n"
    text, start, end = render(tok, QUESTION, fmt, RESPONSES[fmt])
    assert text[:start] == prompt and text[start:end] == RESPONSES[fmt] + tok.eos_token and end == len(text)


def _loss_text(tok, t):
    return tok.decode([i for i, lab in zip(t.input_ids, t.labels) if lab != IGNORE])


@pytest.mark.parametrize("fmt", ["cot", "pot", "tool"])
def test_exactly_the_response_tokens_carry_loss(tok, fmt):
    response = RESPONSES[fmt]
    t = tokenize_example(tok, SFTExample("x", "test", fmt, QUESTION, response))
    prompt_ids = tok(build_prompt(QUESTION, fmt, tok), add_special_tokens=False)["input_ids"]
    assert t.input_ids[:len(prompt_ids)] == prompt_ids, "prompt tokens differ from what eval feeds the model"
    assert all(lab == IGNORE for lab in t.labels[:len(prompt_ids)]), "a prompt token carries loss"
    # labels equal input_ids wherever they are set, and the response ends with EOS, which carries loss
    assert all(lab in (IGNORE, i) for i, lab in zip(t.input_ids, t.labels))
    assert t.input_ids[-1] == tok.eos_token_id and t.labels[-1] == tok.eos_token_id
    spans = masked_spans(fmt, response)
    expected = "".join(response[a:b] for a, b in zip([0] + [e for _, e in spans], [s for s, _ in spans] + [len(response)]))
    assert _loss_text(tok, t) == expected + tok.eos_token, "loss tokens are not exactly the response minus tool outputs"
    if fmt == "tool":
        masked = tok.decode([i for i, lab in zip(t.input_ids[len(prompt_ids):], t.labels[len(prompt_ids):])
                             if lab == IGNORE])
        assert masked == "\n8\n```\n\n8\n```\n", "exactly the tool outputs are masked inside the response"
    else:
        assert all(lab != IGNORE for lab in t.labels[len(prompt_ids):])


def test_plain_template_for_base_tokenizers(tok):
    """A base tokenizer without a chat template gets DeepSeekMath-Instruct's User/Assistant layout."""
    base = train_tokenizer([QUESTION, COT] * 5, vocab_size=300)
    base.chat_template = None
    ensure_chat_template(base)
    assert base.chat_template == PLAIN_CHAT_TEMPLATE
    prompt = build_prompt(QUESTION, "cot", base)
    assert prompt.startswith(base.bos_token + "User: ") and prompt.endswith("\n\nAssistant:")
    t = tokenize_example(base, SFTExample("x", "test", "cot", QUESTION, COT))
    assert _loss_text(base, t) == " " + COT + base.eos_token

"""The one prompt builder: the paper's instructions, chat template, plain few-shot layout, stop strings."""

import pytest

from grading.prompts import (
    COT_INSTRUCTION,
    EXEMPLARS,
    TOOL_INSTRUCTION,
    build_prompt,
    stop_strings,
    user_message,
)


@pytest.fixture(scope="module")
def chat_tokenizer():
    from pipeline.models import train_tokenizer

    return train_tokenizer(["What is 2+2? Please reason step by step."] * 30, vocab_size=300)


def test_paper_instructions_verbatim():
    # DeepSeekMath evaluation: "{question}\nPlease reason step by step, and put your final answer within \boxed{}."
    assert COT_INSTRUCTION == "Please reason step by step, and put your final answer within \\boxed{}."
    assert TOOL_INSTRUCTION.startswith("Please integrate natural language reasoning with programs")
    assert user_message("  What is 2+2? ", "cot") == "What is 2+2?\n" + COT_INSTRUCTION


def test_chat_template_used_when_the_tokenizer_has_one(chat_tokenizer):
    p = build_prompt("What is 2+2?", "cot", chat_tokenizer)
    assert p == f"<|user|>\nWhat is 2+2?\n{COT_INSTRUCTION}\n<|assistant|>\n"
    assert stop_strings("cot", chat_tokenizer) == []
    assert stop_strings("tool", chat_tokenizer) == ["```output"]


def test_chat_few_shot_becomes_earlier_turns(chat_tokenizer):
    p = build_prompt("What is 2+2?", "cot", chat_tokenizer, few_shot=2)
    q1, a1 = EXEMPLARS["cot"][0]
    assert p.startswith(f"<|user|>\n{q1}\n{COT_INSTRUCTION}\n<|assistant|>\n{a1}<|eos|>\n")
    assert p.count("<|user|>") == 3 and p.endswith("<|assistant|>\n")


def test_plain_layout_for_base_models(chat_tokenizer):
    zero = build_prompt("What is 2+2?", "cot")
    assert zero == f"Question: What is 2+2?\n{COT_INSTRUCTION}\nAnswer:"
    assert build_prompt("What is 2+2?", "cot", chat_tokenizer, chat=False) == zero
    three = build_prompt("What is 2+2?", "pot", few_shot=3)
    blocks = three.split("\n\nQuestion: ")
    assert len(blocks) == 4 and blocks[-1].startswith("What is 2+2?")
    assert "```python" in blocks[0]
    assert stop_strings("cot") == ["\nQuestion:"]
    assert stop_strings("tool") == ["\nQuestion:", "```output"]


def test_custom_exemplars_and_errors(chat_tokenizer):
    p = build_prompt("Q", "cot", few_shot=1, exemplars=[("1+1?", "\\boxed{2}")])
    assert p.startswith(f"Question: 1+1?\n{COT_INSTRUCTION}\nAnswer: \\boxed{{2}}\n\n")
    with pytest.raises(ValueError, match="few_shot=5"):
        build_prompt("Q", "cot", few_shot=5)
    with pytest.raises(ValueError, match="unknown prompt format"):
        build_prompt("Q", "latex")
    with pytest.raises(ValueError, match="chat template"):
        build_prompt("Q", "cot", None, chat=True)


def test_every_exemplar_states_its_answer_the_way_its_format_asks():
    for fmt, shots in EXEMPLARS.items():
        for _, answer in shots:
            if fmt == "pot":
                assert answer.startswith("```python") and "print(" in answer and "\\boxed" not in answer
            else:
                assert "\\boxed{" in answer
            if fmt == "tool":
                assert "```output" in answer


def test_exemplars_from_a_file_of_solved_problems(tmp_path):
    from grading.prompts import load_exemplars

    path = tmp_path / "sft.jsonl"
    path.write_text("\n".join([
        '{"question": "1+1?", "cot": "So \\\\boxed{2}", "pot": "```python\\nprint(2)\\n```"}',
        '{"question": "no response here"}',
        '{"question": "2+2?", "cot": "So \\\\boxed{4}"}',
    ]) + "\n")
    assert load_exemplars(path, "cot", 2) == [("1+1?", "So \\boxed{2}"), ("2+2?", "So \\boxed{4}")]
    with pytest.raises(ValueError, match="2 few-shot exemplars with 'question' and 'pot' wanted, found 1"):
        load_exemplars(path, "pot", 2)
    p = build_prompt("3+3?", "cot", few_shot=2, exemplars=load_exemplars(path, "cot", 2))
    assert p.count("Question: ") == 3 and "So \\boxed{4}\n\nQuestion: 3+3?" in p

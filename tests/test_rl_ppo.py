"""PPO (DeepSeekMath §4.1.1) on the shared engine: the actor-critic forward, the rollout's GAE advantages on a
real batch, a run's metrics, and exact resume of a killed run (weights of the policy, the value model and
its head)."""

import math

import pytest
import torch

from grading.prompts import build_prompt
from pipeline.generation import build_generator
from pipeline.models import configure_for_training, load_model, load_tokenizer
from rl.logprobs import rows_forward, token_logprobs
from rl.ppo import PPORolloutSource, PPOSettings, make_ppo_loss_fn
from rl.rewards import RewardFunction
from rl.rollouts import RolloutSettings, load_prompts
from rl.value import ActorCritic
from tests import rl_tiny as tiny
from tests.rl_tiny import metrics_rows, rl_config, run_rl

rl_tiny = tiny.rl_tiny  # the module-scoped fixture: a tiny SFT'd policy


def _ppo_source(d, value_model="separate", **ppo):
    tok = load_tokenizer(d / "model")
    policy = load_model(d / "model")
    ac = ActorCritic(policy, value_model)
    ps = load_prompts([{"data": str(d / "rl.jsonl"), "schema": "problem"}])
    for p in ps.prompts:
        p.prompt = build_prompt(p.question, "cot", tok)
    settings = RolloutSettings(prompts_per_step=4, group_size=2, max_new_tokens=48, micro_batches=2)
    return PPORolloutSource(ps.prompts, ac, load_model(d / "model"), build_generator("hf", policy, tok), tok,
                            RewardFunction({"correctness": 1.0}), settings, ppo=PPOSettings(**ppo))


@pytest.mark.parametrize("value_model", ["separate", "shared"])
def test_actor_critic_forward(rl_tiny, value_model):
    src = _ppo_source(rl_tiny, value_model)
    ac = src.policy
    assert (ac.critic is None) == (value_model == "shared")
    b = src.next_batch()
    with torch.no_grad():
        ac.value_head.weight.normal_(generator=torch.Generator().manual_seed(0))
        lp, _, values = ac(b.rows)
        # the policy's log-probs are token_logprobs' (the critic changes nothing there) ...
        assert torch.allclose(lp, token_logprobs(ac.policy, b.rows)[0], atol=1e-5)
        # ... and the values are the head on the last hidden state at the positions that predict o_t, the
        # same with each prompt shared across its group or every row as one [prompt | output] sequence
        net = ac.policy if value_model == "shared" else ac.critic
        _, _, flat = rows_forward(net, b.rows, value_head=ac.value_head, share_prompts=False)
        assert torch.allclose(values, flat, atol=1e-4)
        ids = torch.cat([b.rows.prompt_ids[b.rows.group[0]], b.rows.completion_ids[0]])
        keep = torch.cat([b.rows.prompt_mask[b.rows.group[0]].bool(), torch.ones_like(b.rows.completion_ids[0]).bool()])
        h = net(input_ids=ids[keep][None], output_hidden_states=True).hidden_states[-1][0]
        n_p = int(b.rows.prompt_mask[b.rows.group[0]].sum())
        n_o = int(b.rows.completion_mask[0].sum())
        want = ac.value_head(h[n_p - 1: n_p - 1 + n_o]).squeeze(-1)  # position of o_<t predicts V_t
        assert torch.allclose(values[0, :n_o], want, atol=1e-4)


@pytest.mark.parametrize("value_model", ["separate", "shared"])
def test_value_model_has_its_own_learning_rate(rl_tiny, value_model):
    """rl.ppo.value_lr: the value network (separate) and the head form the "value" group, the policy (with
    a shared trunk) the "policy" group; together every parameter of the actor-critic once."""
    ac = ActorCritic(load_model(rl_tiny / "model"), value_model)
    policy, value = ac.param_groups(1e-5, 1e-3)
    assert (policy["name"], policy["lr"], value["name"], value["lr"]) == ("policy", 1e-5, "value", 1e-3)
    want_value = {id(p) for p in ac.value_head.parameters()}
    if value_model == "separate":
        want_value |= {id(p) for p in ac.critic.parameters()}
    assert {id(p) for p in value["params"]} == want_value
    assert {id(p) for p in policy["params"]} == {id(p) for p in ac.policy.parameters()}
    assert ac.param_groups(1e-5)[1]["lr"] == 1e-5  # value_lr None: the policy's


def test_ppo_rollout_advantages(rl_tiny):
    """With the zero-initialized head (V = 0), gamma = lambda = 1, no KL and no whitening, every token's
    advantage and return is its output's outcome reward (reward-to-go of a reward paid at the end)."""
    src = _ppo_source(rl_tiny, gamma=1.0, lam=1.0, kl_coef=0.0, whiten_advantages=False)
    b = src.next_batch()
    m = b.rows.completion_mask
    assert torch.all(b.old_values == 0)
    want = b.rewards[:, None] * m
    assert torch.allclose(b.advantages, want) and torch.allclose(b.returns, want)
    assert b.metrics["explained_variance"] == pytest.approx(0.0) or float(want.var()) == 0.0
    # whitened (the default): mean 0 and std 1 over the rollout's tokens
    src = _ppo_source(rl_tiny, kl_coef=0.04)
    a, c = src.next_batch(), src.next_batch()
    adv = torch.cat([a.advantages[a.rows.completion_mask.bool()], c.advantages[c.rows.completion_mask.bool()]])
    if adv.std() > 0:
        assert float(adv.mean()) == pytest.approx(0.0, abs=1e-5)
        assert float(adv.std(correction=0)) == pytest.approx(1.0, abs=1e-3)
    assert a.metrics["kl"] == pytest.approx(0.0, abs=1e-5)  # policy = reference before any update


def test_killed_ppo_run_resumes_exactly(rl_tiny, tmp_path):
    from safetensors.torch import load_file

    cfg = rl_config(tmp_path, rl_tiny, algorithm="ppo", group_size=2, ref_reset_every=2, ppo={"value_lr": 3e-3})
    ref = run_rl(cfg, rl_tiny / "model", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = run_rl(cfg, rl_tiny / "model", tmp_path / "res", kill_at=2)
    assert killed.returncode == -9, killed.stderr[-3000:]
    again = run_rl(cfg, rl_tiny / "model", tmp_path / "res")
    assert again.returncode == 0, again.stderr[-3000:]
    a = load_file(str(tmp_path / "ref" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "res" / "model" / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), f"policy weights differ after resume: {k}"
    init = load_file(str(rl_tiny / "model" / "model.safetensors"))
    assert any(not torch.equal(init[k], a[k]) for k in a), "3 PPO steps left the SFT weights unchanged"
    ra, rb = metrics_rows(tmp_path / "ref"), metrics_rows(tmp_path / "res")
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == [1, 2, 3]
    for x, y in zip(ra, rb):  # the value model resumed too: same values, value loss and explained variance
        for key in ("reward_mean", "value_loss", "explained_variance", "value_clip_fraction", "kl", "loss"):
            assert x[key] == pytest.approx(y[key], abs=1e-6), (x["step"], key)
    assert all(math.isfinite(r["value_loss"]) for r in ra)
    # the value model learns: V_old is 0 at step 1 (zero head), not after a step with a reward to fit
    assert ra[0]["value_mean"] == 0.0
    assert ra[0]["reward_mean"] > 0, "the fixture should sample some correct outputs"
    assert ra[1]["value_mean"] != 0.0
    assert ra[0]["lr/value"] == pytest.approx(3 * ra[0]["lr/policy"])  # each group on its lr, one schedule


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(rl_tiny):
    """model.gradient_checkpointing (issue #16): the checkpointed actor-critic runs every row as one
    [prompt | output] forward (no KV cache to share prompts) and must give the plain run's loss and gradients."""
    src = _ppo_source(rl_tiny, value_model="separate")
    b = src.next_batch()
    plain = src.policy
    ckpt = ActorCritic(load_model(rl_tiny / "model"), "separate")
    ckpt.load_state_dict(plain.state_dict())
    configure_for_training(ckpt.policy, gradient_checkpointing=True)
    configure_for_training(ckpt.critic, gradient_checkpointing=True)
    grads = []
    for model, share in ((plain, None), (ckpt, False)):
        model.train()
        model.zero_grad()
        loss, m = make_ppo_loss_fn(0.2, 0.2, 0.5, share_prompts=share)(model, b)
        loss.backward()
        grads.append((float(loss.detach()), m["value_loss"], {k: p.grad.clone() for k, p in model.named_parameters()
                                                     if p.grad is not None}))
    (l1, v1, g1), (l2, v2, g2) = grads
    assert l1 == pytest.approx(l2, abs=1e-5) and v1 == pytest.approx(v2, abs=1e-6)
    assert g1.keys() == g2.keys() and any(k.startswith("critic.") for k in g1)
    for k in g1:
        assert torch.allclose(g1[k], g2[k], atol=1e-5), k


@pytest.mark.parametrize("tied", [True, False])
def test_every_trainable_parameter_gets_a_gradient(rl_tiny, tied):
    """DDP (without find_unused_parameters) needs a gradient for every trainable parameter each step. The
    separate critic reads no log-probs, so its own vocabulary projection gets none: untied, it is frozen;
    tied, it is the input embedding, which the critic does use. One PPO loss backward then reaches every
    trainable parameter of the actor-critic, called as a module (as the DDP wrapper calls it)."""
    from pipeline.models import build_model

    src = _ppo_source(rl_tiny)
    b = src.next_batch()
    ac = ActorCritic(build_model(src.tokenizer, hidden_size=32, num_layers=2, num_heads=2, tie_word_embeddings=tied),
                     "separate")
    with torch.no_grad():
        ac.value_head.weight.normal_(generator=torch.Generator().manual_seed(0))
    assert ac.critic.lm_head.weight.requires_grad == tied and ac.policy.lm_head.weight.requires_grad
    loss, _ = make_ppo_loss_fn(0.2, 0.2, 0.5)(ac, b)
    loss.backward()
    missing = [n for n, p in ac.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing

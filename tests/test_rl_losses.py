"""The unified view's losses and advantages (DeepSeekMath §4.1, §5.2.1) against values computed by hand:
GRPO's clipped objective and coefficient, RFT, PPO's per-token reward, GAE and clipped value loss, DPO's
loss and gradient."""

import math

import pytest
import torch

from rl.advantages import gae, outcome_advantages, ppo_token_rewards, process_advantages
from rl.losses import (
    DPOCoefficient,
    GRPOCoefficient,
    PolicyBatch,
    PPOCoefficient,
    RFTCoefficient,
    build_coefficient,
    k3_kl,
    policy_loss,
    value_loss,
)

# --- advantages -----------------------------------------------------------------------------------


def test_outcome_advantages_hand_computed():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    got = outcome_advantages(r, eps=0.0)
    # group 0: mean 1/2, population std 1/2 -> +-1
    assert got.advantages[0].tolist() == pytest.approx([1.0, -1.0, -1.0, 1.0])
    # group 1: all equal -> no signal, exactly zero, counted
    assert got.advantages[1].tolist() == [0.0, 0.0, 0.0, 0.0]
    # group 2: mean 1/4, std sqrt(3)/4 -> -1/sqrt(3) and sqrt(3)
    s3 = math.sqrt(3.0)
    assert got.advantages[2].tolist() == pytest.approx([-1 / s3, -1 / s3, -1 / s3, s3])
    assert got.zero_std.tolist() == [False, True, False]
    assert got.zero_std_fraction == pytest.approx(1 / 3)


def test_outcome_advantages_eps_and_all_wrong_group():
    got = outcome_advantages(torch.tensor([[2.0, 0.0], [0.0, 0.0]]), eps=1e-4)
    assert got.advantages[0].tolist() == pytest.approx([1 / 1.0001, -1 / 1.0001])
    assert got.advantages[1].tolist() == [0.0, 0.0] and got.zero_std.tolist() == [False, True]
    with pytest.raises(ValueError, match="groups, G"):
        outcome_advantages(torch.zeros(4))


def test_process_advantages_hand_computed():
    # output 0: steps ending at tokens 1 and 3 with rewards 1, 0; output 1: one step ending at 2, reward 1.
    # All step rewards of the group {1, 0, 1}: mean 2/3, population std sqrt(2)/3.
    # normalized: 1 -> +1/sqrt(2), 0 -> -sqrt(2). Token t sums the steps ending at or after t.
    adv, zero = process_advantages([[1.0, 0.0], [1.0]], [[1, 3], [2]], [4, 3], eps=0.0)
    h, s2 = 1 / math.sqrt(2), math.sqrt(2)
    assert not zero
    assert adv[0].tolist() == pytest.approx([h - s2, h - s2, -s2, -s2])
    assert adv[1].tolist() == pytest.approx([h, h, h])


def test_process_advantages_zero_std_and_bad_input():
    adv, zero = process_advantages([[1.0], [1.0, 1.0]], [[0], [0, 1]], [2, 2])
    assert zero and all(a.tolist() == [0.0, 0.0] for a in adv)
    with pytest.raises(ValueError, match="must not decrease"):
        process_advantages([[1.0, 0.0], [0.0]], [[2, 1], [0]], [3, 1])
    with pytest.raises(ValueError, match="step rewards but"):
        process_advantages([[1.0, 0.0], [0.0]], [[1], [0]], [3, 1])


# --- the loss -------------------------------------------------------------------------------------


def _batch(beta_ref=True):
    # Two outputs: 3 tokens and 2 tokens (padded to 3). Ratios pi/pi_old chosen to hit every clip case.
    logp = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.1, 0.9]]))
    ratios = torch.tensor([[1.0, 1.5, 0.5], [1.5, 0.5, 1.0]])
    old = logp - torch.log(ratios)
    ref_ratio = torch.tensor([[2.0, 1.0, 1.0], [1.0, 1.0, 1.0]])  # pi_ref/pi
    ref = logp + torch.log(ref_ratio) if beta_ref else None
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    return PolicyBatch(logp=logp.clone().requires_grad_(True), mask=mask,
                       advantages=torch.tensor([1.0, -0.5]), old_logp=old, ref_logp=ref)


def test_grpo_loss_hand_computed_clipping():
    loss, m = policy_loss(GRPOCoefficient(clip_eps=0.2, beta=0.04), _batch(beta_ref=False))
    # output 0 (A=1):   min(1,1)=1, min(1.5,1.2)=1.2, min(0.5,0.8)=0.5      -> mean 0.9
    # output 1 (A=-.5): min(-.75,-.6)=-.75, min(-.25,-.4)=-.4 (pad ignored) -> mean -0.575
    assert loss.item() == pytest.approx(-(0.9 - 0.575) / 2, rel=1e-6)
    # clipped branch active: out0 tok1 (1.5 > 1.2, A>0), out1 tok1 (0.5 < 0.8, A<0): 2 of 5 tokens
    assert m["clip_fraction"] == pytest.approx(0.4)
    assert "kl" not in m


def test_grpo_loss_hand_computed_kl():
    loss, m = policy_loss(GRPOCoefficient(clip_eps=0.2, beta=0.04), _batch())
    k3 = 2.0 - math.log(2.0) - 1.0  # pi_ref/pi = 2 on one token, 1 elsewhere (k3 = 0 there)
    j0 = (1.0 - 0.04 * k3 + 1.2 + 0.5) / 3
    j1 = (-0.75 - 0.4) / 2
    assert loss.item() == pytest.approx(-(j0 + j1) / 2, rel=1e-6)
    assert m["kl"] == pytest.approx((k3 / 3 + 0.0) / 2, rel=1e-6)
    assert float(k3_kl(torch.tensor(0.0), torch.log(torch.tensor(2.0)))) == pytest.approx(k3)


def test_grpo_gradient_is_the_unified_views_coefficient():
    """At mu = 1 (pi_old = pi) d loss / d log pi_{i,t} = -(1/N)(1/|o_i|)(A_i + beta (pi_ref/pi - 1))."""
    b = _batch()
    b.old_logp = None
    beta = 0.04
    loss, m = policy_loss(GRPOCoefficient(beta=beta), b)
    loss.backward()
    ref_ratio = torch.exp(b.ref_logp - b.logp.detach())
    gc = b.advantages[:, None] + beta * (ref_ratio - 1)
    lengths = b.mask.sum(-1, keepdim=True)
    expected = -(gc / lengths) * b.mask / 2
    assert torch.allclose(b.logp.grad, expected, atol=1e-7)
    assert m["clip_fraction"] == 0.0


def test_output_weights_and_other_coefficients():
    b = _batch(beta_ref=False)
    b.output_weights = torch.tensor([0.25, 0.0])  # e.g. the second output's gold was unparseable
    loss, _ = policy_loss(GRPOCoefficient(), b)
    assert loss.item() == pytest.approx(-0.25 * 0.9, rel=1e-6)

    logp = torch.log(torch.tensor([[0.5, 0.25], [0.5, 0.5]]))
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    rft, m = policy_loss(RFTCoefficient(), PolicyBatch(logp=logp, mask=mask, rewards=torch.tensor([0.0, 1.0])))
    assert rft.item() == pytest.approx(-math.log(0.5) / 2) and m["kept_fraction"] == 0.5
    with pytest.raises(ValueError, match="unknown algorithm"):
        build_coefficient("sft")  # SFT's GC = 1 is sft/train.py's cross-entropy, not an RL algorithm
    assert type(build_coefficient("online_rft")) is type(build_coefficient("rft")) is RFTCoefficient
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(GRPOCoefficient(), PolicyBatch(logp=logp, mask=mask))


# --- PPO (eq. 1-2) --------------------------------------------------------------------------------


def test_ppo_token_rewards_pay_the_outcome_at_the_last_token_and_kl_everywhere():
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    ref = torch.zeros(2, 3)
    logp = torch.tensor([[0.2, -0.1, 0.3], [0.5, 0.0, 7.0]])  # log pi - log pi_ref; 7.0 is padding
    got = ppo_token_rewards(torch.tensor([1.0, 0.5]), logp, ref, mask, kl_coef=0.1)
    # r_t = -0.1 (log pi - log pi_ref), + the outcome at the last real token
    assert got.tolist() == [pytest.approx([-0.02, 0.01, 0.97]), pytest.approx([-0.05, 0.5, 0.0])]


def test_gae_hand_computed():
    """gamma 0.9, lambda 0.5, so gamma lambda = 0.45; V after the last token is 0.
    row 0: r = (0, 0, 1), V = (0.5, 0.2, 0.6)
      d2 = 1 - 0.6 = 0.4                  A2 = 0.4
      d1 = 0.9 * 0.6 - 0.2 = 0.34         A1 = 0.34 + 0.45 * 0.4 = 0.52
      d0 = 0.9 * 0.2 - 0.5 = -0.32        A0 = -0.32 + 0.45 * 0.52 = -0.086
    row 1 (two tokens, then padding whose value 9 must not leak): r = (0, 0.5), V = (0.4, 0.1)
      d1 = 0.5 - 0.1 = 0.4                A1 = 0.4
      d0 = 0.9 * 0.1 - 0.4 = -0.31        A0 = -0.31 + 0.45 * 0.4 = -0.13
    returns = A + V."""
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.5, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.6], [0.4, 0.1, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = gae(rewards, values, mask, gamma=0.9, lam=0.5)
    assert adv[0].tolist() == pytest.approx([-0.086, 0.52, 0.4])
    assert adv[1].tolist() == pytest.approx([-0.13, 0.4, 0.0])
    assert ret[0].tolist() == pytest.approx([0.414, 0.72, 1.0])
    assert ret[1].tolist() == pytest.approx([0.27, 0.5, 0.0])
    # gamma = lambda = 1: A_t = (sum of rewards from t on) - V_t (Monte Carlo return minus the baseline)
    adv1, ret1 = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    assert adv1[0].tolist() == pytest.approx([0.5, 0.8, 0.4]) and ret1[0].tolist() == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="one shape"):
        gae(rewards, values[:, :2], mask)


def test_ppo_value_loss_hand_computed():
    """V = (1, 0), V_old = (0.5, 0.5), R = (2, 0.4), clip 0.2, one output of two tokens.
    token 0: (V - R)^2 = 1; V_clip = 0.5 + 0.2 = 0.7, (0.7 - 2)^2 = 1.69 -> max 1.69, half: 0.845 (clipped)
    token 1: (0 - 0.4)^2 = 0.16; V_clip = 0.5 - 0.2 = 0.3, (0.3 - 0.4)^2 = 0.01 -> 0.16, half: 0.08
    mean over the output's tokens: 0.4625. Gradient: token 0 is on the clipped (constant) branch -> 0;
    token 1: d/dV 0.5 (V - R)^2 / 2 = (V - R) / 2 = -0.2."""
    v = torch.tensor([[1.0, 0.0]], requires_grad=True)
    loss, m = value_loss(v, torch.tensor([[0.5, 0.5]]), torch.tensor([[2.0, 0.4]]), torch.ones(1, 2), clip=0.2)
    assert loss.item() == pytest.approx(0.4625) and m["value_clip_fraction"] == pytest.approx(0.5)
    loss.backward()
    assert v.grad.tolist() == [pytest.approx([0.0, -0.2])]


def test_ppo_policy_objective_is_the_clipped_surrogate_without_a_kl_term():
    b = _batch()  # has a reference: PPO must ignore it (its KL is in the reward)
    loss, m = policy_loss(PPOCoefficient(clip_eps=0.2), b)
    assert loss.item() == pytest.approx(-(0.9 - 0.575) / 2, rel=1e-6) and "kl" not in m


# --- DPO (eq. 14) ----------------------------------------------------------------------------------


def test_dpo_loss_and_gradient_hand_computed():
    """One pair. o+ (2 tokens): pi = (0.5, 0.4), pi_ref = (0.25, 0.4) -> m+ = (ln 2 + 0) / 2.
    o- (1 token, padded): pi = 0.2, pi_ref = 0.1 -> m- = ln 2. beta = 0.5:
    margin = 0.5 (ln2/2 - ln2) = -ln2/4, loss = -log sigmoid(-ln2/4) = ln(1 + 2^(1/4)).
    d loss / d log pi: -beta sigmoid(ln2/4) / 2 on o+'s tokens, +beta sigmoid(ln2/4) / 1 on o-'s, with
    sigmoid(ln2/4) = 2^(1/4) / (1 + 2^(1/4))."""
    logp = torch.log(torch.tensor([[0.5, 0.4], [0.2, 0.9]])).requires_grad_(True)
    ref = torch.log(torch.tensor([[0.25, 0.4], [0.1, 0.3]]))
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, m = policy_loss(DPOCoefficient(beta=0.5), PolicyBatch(logp=logp, mask=mask, ref_logp=ref, n_pairs=1))
    q = 2 ** 0.25
    assert loss.item() == pytest.approx(math.log(1 + q), rel=1e-6)
    assert m["dpo_margin"] == pytest.approx(-math.log(2) / 4, rel=1e-6) and m["dpo_accuracy"] == 0.0
    loss.backward()
    s = q / (1 + q)
    assert logp.grad.tolist() == [pytest.approx([-0.5 * s / 2, -0.5 * s / 2]), pytest.approx([0.5 * s, 0.0])]
    with pytest.raises(ValueError, match="2 x n_pairs"):
        policy_loss(DPOCoefficient(), PolicyBatch(logp=logp, mask=mask, ref_logp=ref, n_pairs=2))


def test_dpo_pair_weights():
    """Two pairs with weights (0.75, 0.25): the loss is -(0.75 log sigmoid(margin_1) + 0.25 log sigmoid(margin_2));
    with pi = pi_ref on the second pair its margin is 0 and its term is log(1/2)."""
    logp = torch.log(torch.tensor([[0.5], [0.3], [0.25], [0.3]]))  # rows: o1+, o2+, o1-, o2-
    ref = torch.log(torch.tensor([[0.25], [0.3], [0.5], [0.3]]))
    mask = torch.ones(4, 1)
    loss, m = policy_loss(DPOCoefficient(beta=1.0), PolicyBatch(logp=logp, mask=mask, ref_logp=ref, n_pairs=2,
                                                                output_weights=torch.tensor([0.75, 0.25])))
    # pair 1: m+ = ln 2, m- = -ln 2 -> margin 2 ln 2 -> log sigmoid = log(4/5)
    assert loss.item() == pytest.approx(-(0.75 * math.log(0.8) + 0.25 * math.log(0.5)), rel=1e-6)
    assert m["dpo_accuracy"] == 0.5

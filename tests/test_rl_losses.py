"""GRPO's loss and advantages (DeepSeekMath §4.1.2, §5.2.1) against values computed by hand."""

import math

import pytest
import torch

from rl.advantages import outcome_advantages, process_advantages
from rl.losses import (
    GRPOCoefficient,
    PolicyBatch,
    RFTCoefficient,
    SFTCoefficient,
    build_coefficient,
    k3_kl,
    policy_loss,
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
    sft, _ = policy_loss(SFTCoefficient(), PolicyBatch(logp=logp, mask=mask))
    assert sft.item() == pytest.approx(-((math.log(0.5) + math.log(0.25)) / 2 + math.log(0.5)) / 2)
    rft, m = policy_loss(RFTCoefficient(), PolicyBatch(logp=logp, mask=mask, rewards=torch.tensor([0.0, 1.0])))
    assert rft.item() == pytest.approx(-math.log(0.5) / 2) and m["kept_fraction"] == 0.5
    with pytest.raises(ValueError, match="unknown algorithm"):
        build_coefficient("ppo2")
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(GRPOCoefficient(), PolicyBatch(logp=logp, mask=mask))

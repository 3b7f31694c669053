"""The trainer's optimiser and EMA: the fused AdamW does torch's AdamW update, and the EMA, which lists
its tensors once, averages exactly as its formula says, also after a checkpoint is loaded into it."""

from __future__ import annotations

import copy

import torch

from diffcli.models.course_unet import CourseUNet
from diffcli.models.unet import UNet
from diffcli.training.ema import EMA
from diffcli.training.optimizer import make_adamw


def _tiny_unet() -> UNet:
    torch.manual_seed(0)
    return UNet(1, None, width=8, mults=(1, 2), num_classes=3, timesteps=100, groups=4, patch=2)


def _step(net: torch.nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 1, 12, 12, generator=g)
    t = torch.randint(0, 100, (4,), generator=g)
    c = torch.randint(0, 3, (4,), generator=g)
    opt.zero_grad()
    (net(x, t, c) - x).pow(2).mean().backward()
    opt.step()


def test_make_adamw_is_fused_on_cpu_and_does_torchs_adamw_update():
    fused_net = _tiny_unet()
    plain_net = copy.deepcopy(fused_net)
    fused = make_adamw(list(fused_net.parameters()), lr=2e-3, weight_decay=0.01)
    plain = torch.optim.AdamW(plain_net.parameters(), lr=2e-3, weight_decay=0.01)
    assert fused.defaults["fused"] is True
    start = [p.detach().clone() for p in plain_net.parameters()]
    for seed in range(8):
        _step(fused_net, fused, seed)
        _step(plain_net, plain, seed)
    moved = max(float((p.detach() - s).abs().max()) for p, s in zip(plain_net.parameters(), start))
    apart = max(
        float((a.detach() - b.detach()).abs().max()) for a, b in zip(fused_net.parameters(), plain_net.parameters())
    )
    assert moved > 1e-3  # the steps did move the network
    assert apart < 1e-4 * moved  # float rounding, not another update
    # a checkpoint of one resumes in the other: the state dicts have the same form
    plain.load_state_dict(fused.state_dict())


def test_make_adamw_falls_back_where_the_fused_kernel_does_not_apply():
    # complex parameters have no fused kernel: torch would refuse them at the first step
    param = torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64))
    opt = make_adamw([param], lr=1e-3, weight_decay=0.0)
    assert not opt.defaults.get("fused")
    param.grad = torch.ones(3, dtype=torch.complex64)
    opt.step()
    assert torch.all(param.real < 0)


def test_ema_follows_its_formula_across_steps_and_a_loaded_state():
    net = _tiny_unet()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    ema = EMA(net, decay=0.9)
    expected = [p.detach().clone() for p in net.parameters()]
    for step in range(1, 7):
        _step(net, opt, step)
        ema.update(net, step)
        d = ema.current_decay(step)
        expected = [e * d + p.detach() * (1 - d) for e, p in zip(expected, net.parameters())]
        if step == 3:  # as --resume does: load a saved average into the same EMA object, then go on
            saved = {k: v.clone() for k, v in ema.state_dict().items()}
            for p in ema.model.parameters():
                p.data.zero_()
            ema.load_state_dict(saved)
    for got, want in zip(ema.model.parameters(), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_ema_copies_the_running_statistics_of_a_batchnorm_network():
    torch.manual_seed(0)
    net = CourseUNet(1, 8, 3, True, 100)
    ema = EMA(net, decay=0.99)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.rand(4, 1, 28, 28)
    for step in range(1, 3):
        opt.zero_grad()
        net(x, torch.randint(0, 100, (4,)), torch.randint(0, 3, (4,))).pow(2).mean().backward()
        opt.step()
        ema.update(net, step)
    buffers = dict(net.named_buffers())
    assert buffers  # BatchNorm's running statistics
    for name, value in ema.model.named_buffers():
        assert torch.equal(value, buffers[name]), name

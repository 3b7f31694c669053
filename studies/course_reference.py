"""A minimal, independent implementation of the course's class-conditioned DDPM recipe, to check
`diffcli train --preset course` against.

Written from the course's description, sharing nothing with diffcli's trainer, network or samplers:
its own UNet (BatchNorm, GELU, one-hot classes that scale the features, t / T that shifts them), linear
betas 1e-4..0.02 with T = 300, eps-prediction, Adam 1e-3, batch 128, the class dropped 10 % of the time;
sampled with 300 DDPM steps and CFG 5 in eval mode. Only the data loader and the scoring classifier
come from diffcli, so the score is read exactly as `diffcli eval` reads it.

    python studies/course_reference.py --data-dir DIR [--seed 1] [--epochs 1] [--per-class 10]
        [--out ref.png] [--limit N]
    python studies/course_reference.py --data-dir DIR --weights-of MODEL   # sample a --preset course model

Measured on the 2-core CPU (seed 1, one epoch, 31 min while another job shared the machine): 100 % of
100 samples read as their class (every class 10/10); what that showed about `--preset course` is in
docs/performance.md ("Recipes"). CourseUNet has this script's layout, tensor for tensor
(tests/test_course_unet.py), and that test replays the preset's training steps through `training_loss`
(the same network after the same batches).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.GELU())


class Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(conv(c_in, c_out), conv(c_out, c_out))


class Down(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, 3, 2, 1), nn.BatchNorm2d(c_out), nn.GELU(), Block(c_out, c_out))


class Up(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.GELU(), Block(c_out, c_out)
        )


class FC(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Linear(c_in, c_out), nn.GELU(), nn.Linear(c_out, c_out))


class Net(nn.Module):
    """The course's class-conditioned UNet at width D; forward(x, t in [0, 1], one-hot c or zeros)."""

    def __init__(self, D: int = 64, K: int = 10) -> None:
        super().__init__()
        self.c0, self.d1, self.d2 = Block(1, D), Down(D, D), Down(D, 2 * D)
        self.flat = nn.Sequential(nn.AvgPool2d(7), nn.GELU())
        self.unflat = nn.Sequential(nn.ConvTranspose2d(2 * D, 2 * D, 7, 7), nn.BatchNorm2d(2 * D), nn.GELU())
        self.u1, self.u2, self.c1 = Up(4 * D, D), Up(2 * D, D), Block(2 * D, D)
        self.out = nn.Conv2d(D, 1, 3, 1, 1)
        self.t1, self.t2, self.k1, self.k2 = FC(1, 2 * D), FC(1, D), FC(K, 2 * D), FC(K, D)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x0 = self.c0(x)
        d1 = self.d1(x0)
        d2 = self.d2(d1)
        h = self.k1(c)[:, :, None, None] * self.unflat(self.flat(d2)) + self.t1(t)[:, :, None, None]
        u1 = self.k2(c)[:, :, None, None] * self.u1(torch.cat([h, d2], 1)) + self.t2(t)[:, :, None, None]
        u2 = self.u2(torch.cat([u1, d1], 1))
        return self.out(self.c1(torch.cat([u2, x0], 1)))


T = 300
BETAS = torch.linspace(1e-4, 0.02, T)
ALPHAS = 1 - BETAS
ABAR = torch.cumprod(ALPHAS, 0)


def training_loss(
    net: Net, x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """The course's loss on one batch: images x in [0, 1], classes y (dropped to an all-zero one-hot
    where `keep` is False), timesteps t in [0, T), noise eps; the network predicts eps."""
    c = F.one_hot(y, 10).float() * keep.float()[:, None]
    a = ABAR[t][:, None, None, None]
    return F.mse_loss(net(a.sqrt() * x + (1 - a).sqrt() * eps, (t.float() / T)[:, None], c), eps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="a torchvision root (or IDX folder) holding MNIST")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--out", default="course-reference.png")
    parser.add_argument(
        "--limit", type=int, default=None, help="train on the first N images only (a quick check of the script)"
    )
    parser.add_argument(
        "--weights-of",
        metavar="MODEL",
        default=None,
        help="skip training: sample a registry model trained with `--preset course` through this script's loop",
    )
    args = parser.parse_args()
    from diffcli.data import load_dataset
    from diffcli.io.figures import figure
    from diffcli.io.output_paths import OutputTarget
    from diffcli.io.png import write_png
    from diffcli.scoring.classifier import load_or_train_classifier
    from diffcli.scoring.inference import predict

    torch.manual_seed(args.seed)
    data = load_dataset("mnist", "train", args.data_dir)
    X, Y = data.images[: args.limit].float() / 255.0, data.labels[: args.limit]
    betas, alphas, abar = BETAS, ALPHAS, ABAR
    net = Net()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.1 ** (1 / 20))  # the course: 20 epochs planned
    if args.weights_of:  # the same layout tensor for tensor (tests/test_course_unet.py): load by position
        import diffcli

        trained = diffcli.load(args.weights_of, device="cpu").loaded.network.state_dict().values()
        net.load_state_dict(dict(zip(net.state_dict(), trained)))
    began = time.time()
    net.train()
    for epoch in range(0 if args.weights_of else args.epochs):
        perm = torch.randperm(len(X))
        for step in range(len(X) // 128):
            idx = perm[step * 128 : (step + 1) * 128]
            x, y = X[idx], Y[idx]
            keep = torch.rand(len(y)) >= 0.1  # the class dropped 10 % of the time
            t = torch.randint(0, T, (len(y),))
            eps = torch.randn_like(x)
            loss = training_loss(net, x, y, keep, t, eps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 50 == 0:
                print(
                    f"epoch {epoch + 1} step {step + 1} loss {loss.item():.5f} {time.time() - began:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )
        sched.step()
    net.eval()
    classes = list(range(10))
    labels = torch.tensor([k for k in classes for _ in range(args.per_class)])
    onehot = F.one_hot(labels, 10).float()
    x = torch.randn(len(labels), 1, 28, 28)
    with torch.no_grad():
        for t in range(T - 1, -1, -1):
            tt = torch.full((len(labels), 1), t / T)
            e_c, e_u = net(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([onehot, torch.zeros_like(onehot)])).chunk(
                2
            )
            e = e_u + 5 * (e_c - e_u)
            x0 = (x - (1 - abar[t]).sqrt() * e) / abar[t].sqrt()
            prev = abar[t - 1] if t > 0 else torch.tensor(1.0)
            x = prev.sqrt() * betas[t] / (1 - abar[t]) * x0 + alphas[t].sqrt() * (1 - prev) / (1 - abar[t]) * x
            if t > 0:
                x = x + betas[t].sqrt() * torch.randn_like(x)
    pixels = x.clamp(0, 1)
    classifier = load_or_train_classifier("mnist", data_dir=args.data_dir, device=torch.device("cpu"))
    predicted = predict(classifier, pixels).argmax(1)
    per_class = {k: float((predicted[labels == k] == k).float().mean()) for k in classes}
    print(f"accuracy {float((predicted == labels).float().mean()):.3f} per class {per_class}")
    rows = [[*pixels[i * args.per_class : (i + 1) * args.per_class].numpy()] for i in classes]
    write_png(figure(rows, row_labels=[str(k) for k in classes], scale=2), OutputTarget(args.out), {})


if __name__ == "__main__":
    main()

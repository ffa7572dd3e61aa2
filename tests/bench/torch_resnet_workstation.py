#!/usr/bin/python3
"""PyTorch-CPU peer for optbench's ResNet-50 `workstation` preset.

Trains the same network (DESIGN.md section 3) on synthetic inputs and prints
the training throughput, so optbench's own steps/s can be compared with
PyTorch measured in the same run on the same machine (section 9). Only the
time per step matters here: inputs and labels are random.

Run with Debian's python (python3-torch): /usr/bin/python3 this.py --threads 2
The last line is machine-readable:
  torch_img_per_s=<f> steps=<n> batch=<b> threads=<t> median_step_s=<f> torch=<v>
"""
import argparse
import statistics
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_bench_common import setup_torch, time_training_steps

EXPECTED_PARAMS = 1_483_898  # DESIGN.md section 3, ResNet-50 workstation


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: 1x1 -> 3x3 (carries the stride) -> 1x1 (x4)."""

    expansion = 4

    def __init__(self, in_c, width, stride):
        super().__init__()
        out_c = width * self.expansion
        self.conv1 = nn.Conv2d(in_c, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_c)
        self.downsample = None
        if stride != 1 or in_c != out_c:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False), nn.BatchNorm2d(out_c))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(y + shortcut)


class ResNetWorkstation(nn.Module):
    """Blocks [3,4,6,3], widths 16/32/64/128, CIFAR stem (3x3/1, no max-pool)."""

    def __init__(self, in_channels=1, classes=10, widths=(16, 32, 64, 128), blocks=(3, 4, 6, 3)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        layers, in_c = [], widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks)):
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(Bottleneck(in_c, width, stride))
                in_c = width * Bottleneck.expansion
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(in_c, classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--channels-last", action="store_true",
                    help="NHWC memory format (optbench's own layout)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.threads < 1 or args.batch < 1 or args.steps < 1 or args.warmup < 0:
        sys.exit("torch_resnet_workstation: --threads, --batch and --steps must be >= 1, --warmup >= 0")

    setup_torch(args.threads, args.seed)

    model = ResNetWorkstation()
    n_params = sum(p.numel() for p in model.parameters())
    if n_params != EXPECTED_PARAMS:
        sys.exit(f"torch_resnet_workstation: model has {n_params} parameters, "
                 f"expected {EXPECTED_PARAMS}: it is not the optbench workstation ResNet")
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-5)

    # One fixed synthetic batch: data loading is not what is measured.
    x = torch.randn(args.batch, 1, 32, 32).to(memory_format=fmt)
    labels = torch.randint(0, 10, (args.batch,))

    times, _ = time_training_steps(lambda: F.cross_entropy(model(x), labels), opt, args.warmup, args.steps)

    # The median is robust to the odd step slowed by the OS.
    median = statistics.median(times)
    print(f"params={n_params} mean_step_s={statistics.fmean(times):.4f} "
          f"min_step_s={min(times):.4f} channels_last={int(args.channels_last)}")
    print(f"torch_img_per_s={args.batch / median:.2f} steps={args.steps} batch={args.batch} "
          f"threads={args.threads} median_step_s={median:.4f} torch={torch.__version__}")


if __name__ == "__main__":
    main()

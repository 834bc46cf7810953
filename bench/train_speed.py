"""Training step throughput on CPU: webclip's tiny-vit vs the same open_clip model, plus the matmul peak.

open_clip imports torchvision only for image transforms, and PyPI's torchvision does not import beside
our torch: it is installed here with ``--no-deps`` into ``bench/out/openclip`` and those modules are
stubbed; the timed step (forward, loss, backward, AdamW) never touches them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
OPENCLIP = OUT / "openclip"
STEP = r'''
import json, sys, time, types
import torch
torch.set_num_threads(2)
torch.manual_seed(0)
which, vocab, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def stub_torchvision():
    class Meta(type):
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return cls
    class Anything(metaclass=Meta):
        def __init__(self, *a, **k): pass
        def __call__(self, *a, **k): return a[0] if a else None
    def module(name):
        m = types.ModuleType(name)
        def getattr_(attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return Anything
        m.__getattr__ = getattr_
        sys.modules[name] = m
        return m
    for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.ops",
                 "torchvision.ops.misc"):
        m = module(name)
        if "." in name:
            parent, child = name.rsplit(".", 1)
            sys.modules[parent].__dict__[child] = m

if which == "open_clip":
    stub_torchvision()
    import open_clip
    from open_clip.loss import ClipLoss
    model = open_clip.CLIP(embed_dim=256,
        vision_cfg=dict(image_size=64, patch_size=8, width=192, layers=6, head_width=64, mlp_ratio=4.0),
        text_cfg=dict(context_length=32, vocab_size=vocab, width=192, heads=3, layers=6))
    loss_fn = ClipLoss()
    def step(images, tokens):
        image_features, text_features, logit_scale = model(images, tokens)[:3]
        return loss_fn(image_features, text_features, logit_scale)
else:
    from webclip.model.clip import CLIP
    from webclip.model.config import load_preset
    from webclip.model.loss import clip_loss
    cfg = load_preset("tiny-vit"); cfg.vocab_size = vocab
    model = CLIP(cfg)
    def step(images, tokens):
        return clip_loss(*model(images, tokens))
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
images = torch.randn(batch, 3, 64, 64)
tokens = torch.randint(3, vocab, (batch, 32)); tokens[:, 0] = 1; tokens[:, 20] = 2
if which == "open_clip":
    tokens[:, 20] = vocab - 1  # open_clip pools at argmax token id (its end-of-text id is the largest)
params = sum(p.numel() for p in model.parameters())
from torch.utils.flop_counter import FlopCounterMode
with FlopCounterMode(display=False) as fc:
    step(images, tokens).backward()
flops = fc.get_total_flops()
opt.zero_grad()
for i in range(2 + steps):
    if i == 2:
        start = time.perf_counter()
    loss = step(images, tokens)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
seconds = time.perf_counter() - start
print(json.dumps({"which": which, "samples_s": batch * steps / seconds, "flops_per_step": flops, "params": params}))
'''
PEAK = r'''
import json, time, torch
torch.set_num_threads(2)
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
a @ b
start = time.perf_counter(); n = 10
for _ in range(n):
    a @ b
print(json.dumps({"gflops": 2 * 2048**3 * n / (time.perf_counter() - start) / 1e9}))
'''


def ensure_open_clip() -> None:
    """Install open_clip 3.3.0 without dependencies into bench/out (once)."""
    if not (OPENCLIP / "open_clip").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(OPENCLIP),
                        "open_clip_torch==3.3.0"], check=True)


def run(code: str, *args: str, extra_path: str = "") -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": extra_path}
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(batch: int = 128, steps: int = 8) -> list[dict]:
    """Time both models at two vocabulary sizes; print one JSON line each."""
    ensure_open_clip()
    peak = run(PEAK)["gflops"]
    rows = []
    for vocab in (49408, 8192):
        ours = run(STEP, "webclip", str(vocab), str(batch), str(steps))
        theirs = run(STEP, "open_clip", str(vocab), str(batch), str(steps), extra_path=str(OPENCLIP))
        row = {"bench": "train_speed", "model": "tiny-vit", "batch": batch, "vocab": vocab, "threads": 2,
               "webclip_samples_s": round(ours["samples_s"], 1), "open_clip_samples_s": round(theirs["samples_s"], 1),
               "ratio": round(ours["samples_s"] / theirs["samples_s"], 3), "matmul_peak_gflops": round(peak, 1),
               "webclip_fraction_of_peak": round(ours["flops_per_step"] * ours["samples_s"] / batch / 1e9 / peak, 3),
               "open_clip_fraction_of_peak": round(theirs["flops_per_step"] * theirs["samples_s"] / batch / 1e9 / peak, 3),
               "params": {"webclip": ours["params"], "open_clip": theirs["params"]}}
        print(json.dumps(row))
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()

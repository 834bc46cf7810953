"""``webclip eval``: zero-shot on an ImageFolder, retrieval on the val shards, a linear probe."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from webclip import storage
from webclip.ablation import head_tail_classes
from webclip.hashing import unit_draw
from webclip.layout import table_path
from webclip.model.config import EvalConfig
from webclip.model.data import iter_tar, preprocess, read_manifest
from webclip.model.tokenizer import encode_batch
from webclip.model.train import load_model, pick_device
from webclip.model.zeroshot import accuracy_report, classifier_weights
from webclip.parquet import iter_rows, parts
from webclip.runfolder import StageDir, atomic_write_json, shards_final
from webclip.stats import Tally

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp"}


def in_run(run: Path, p: str) -> Path:
    """A path relative to the run folder unless absolute."""
    return Path(p) if Path(p).is_absolute() else run / p


def image_folder(root: Path, classnames: list[str]) -> list[tuple[Path, int]]:
    """(path, label) for ``root/<class>/*`` in class order, then file name order."""
    items = []
    for i, c in enumerate(classnames):
        folder = root / c
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder for class {c!r} in {root}")
        items += [(p, i) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS]
    return items


def webdataset_images(root: Path) -> list[tuple[str, bytes, int]]:
    """(key, image bytes, label) from a WebDataset eval set: ``{key}.jpg|png|webp`` + ``{key}.cls`` (class index)."""
    tars = [root] if root.is_file() else sorted(root.glob("*.tar"))
    out = []
    for t in tars:
        for s in iter_tar(str(t)):
            image = next((s[e] for e in ("jpg", "jpeg", "png", "webp") if e in s), None)
            if image is not None and "cls" in s:
                out.append((s["key"], image, int(s["cls"])))
    return out


def labelled_images(root: Path, classnames: list[str]) -> list[tuple[str, bytes, int]]:
    """An ImageFolder (``root/<class>/*``) or a WebDataset (``.tar`` files with ``.cls``) as (key, bytes, label)."""
    if root.suffix == ".tar" or (root.is_dir() and any(root.glob("*.tar"))):
        return webdataset_images(root)
    return [(str(p.relative_to(root)), p.read_bytes(), label) for p, label in image_folder(root, classnames)]


@torch.no_grad()
def embed_images(model: Any, images: list[Image.Image], batch: int) -> torch.Tensor:
    """(N, E) unit image features."""
    device = next(model.parameters()).device
    feats = []
    for i in range(0, len(images), batch):
        x = torch.stack([preprocess(im, model.cfg.image_size) for im in images[i:i + batch]]).to(device)
        feats.append(model.encode_image(x).cpu())
    return torch.cat(feats) if feats else torch.zeros(0, model.cfg.embed_dim)


@torch.no_grad()
def retrieval(model: Any, tok: Any, tars: list[str], batch: int) -> dict[str, float]:
    """Recall@1/5/10 image->text and text->image on the val shards."""
    samples = [s for t in tars for s in iter_tar(t)]
    if len(samples) < 2:
        return {}

    img = embed_images(model, [Image.open(io.BytesIO(s["jpg"])) for s in samples], batch)
    device = next(model.parameters()).device
    txt = torch.cat([model.encode_text(encode_batch(tok, [s["txt"].decode() for s in samples[i:i + batch]],
                                                    model.cfg.context_length).to(device)).cpu()
                     for i in range(0, len(samples), batch)])
    sims = img @ txt.T
    target = torch.arange(len(samples))
    out = {"n": len(samples)}
    for k in (1, 5, 10):
        kk = min(k, len(samples))
        out[f"image_to_text_R@{k}"] = sims.topk(kk, 1).indices.eq(target[:, None]).any(1).float().mean().item()
        out[f"text_to_image_R@{k}"] = sims.T.topk(kk, 1).indices.eq(target[:, None]).any(1).float().mean().item()
    return out


def linear_probe(feats: torch.Tensor, labels: torch.Tensor, keys: list[str], val_fraction: float,
                 n_classes: int) -> dict[str, Any]:
    """Logistic regression on frozen features; L2 strength chosen on a validation part, tested on the rest."""
    draw = torch.tensor([unit_draw(0, f"probe:{k}") for k in keys])
    test = draw < 0.3
    val = (draw >= 0.3) & (draw < 0.3 + val_fraction * 0.7)
    train = ~(test | val)
    if train.sum() < n_classes or val.sum() == 0 or test.sum() == 0:
        return {}

    def fit(wd: float, x: torch.Tensor, y: torch.Tensor) -> torch.nn.Linear:
        torch.manual_seed(0)
        clf = torch.nn.Linear(x.shape[1], n_classes)
        opt = torch.optim.LBFGS(clf.parameters(), max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(clf(x), y) + wd * clf.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return clf

    def acc(clf: torch.nn.Linear, m: torch.Tensor) -> float:
        return clf(feats[m]).argmax(1).eq(labels[m]).float().mean().item()

    grid = [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    scores = {wd: acc(fit(wd, feats[train], labels[train]), val) for wd in grid}
    best = max(grid, key=lambda wd: (scores[wd], -wd))
    final = fit(best, feats[train | val], labels[train | val])
    return {"l2": best, "val_accuracy": scores, "test_top1": acc(final, test), "n_test": int(test.sum())}


def plot_confusion(confusion: list[list[int]], classnames: list[str], out: Path) -> None:
    """A PNG heat map of the zero-shot confusion matrix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classnames)), classnames, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classnames)), classnames, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title="zero-shot confusion")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def training_counts(run: Path) -> dict[str, int] | None:
    """Train samples per query entry (lower-cased entry -> count) from the shards' samples table, if the run has one."""
    samples, names = table_path(run, "samples"), table_path(run, "query_counts")
    if not (parts(samples) and parts(names)):
        return None
    entry = {r["entry_id"]: r["entry"].lower() for r in iter_rows(parts(names), columns=["entry_id", "entry"])}
    counts: dict[str, int] = {}
    for row in iter_rows(parts(samples), columns=["entry_ids", "split"]):
        if row["split"] == "train":
            for eid in row["entry_ids"]:
                counts[entry[eid]] = counts.get(entry[eid], 0) + 1
    return counts


def head_tail_report(logits: torch.Tensor, y: torch.Tensor, classnames: list[str],
                     counts: dict[str, int] | None, fraction: float = 1 / 3) -> dict[str, Any]:
    """Top-1 on the head and tail thirds of the classes by training samples; None without training counts."""
    if counts is None:
        return {"top1_head": None, "top1_tail": None, "head_classes": [], "tail_classes": [],
                "head_tail_rule": "no per-entry training counts in this run (shards/samples, curated/query_counts)"}
    head, tail = head_tail_classes(classnames, counts, fraction)
    out: dict[str, Any] = {"head_classes": head, "tail_classes": tail,
                           "head_tail_rule": f"classes ranked by train samples per entry; top and bottom {fraction:.0%}",
                           "class_train_samples": {c: counts.get(c.lower(), 0) for c in classnames}}
    for name, group in (("top1_head", head), ("top1_tail", tail)):
        members = torch.tensor([classnames[int(label)] in group for label in y])
        out[name] = logits[members].argmax(1).eq(y[members]).float().mean().item() if members.any() else None
    return out


def run_eval(cfg: EvalConfig, out_stage: StageDir, run: Path) -> dict[str, Any]:
    """Evaluate a checkpoint and finish ``<run>/eval``."""
    torch.set_num_threads(cfg.threads)
    ckpt = in_run(run, cfg.checkpoint)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt}")
    model, tok, _ = load_model(ckpt, pick_device(cfg.device))
    classnames = json.loads(in_run(run, cfg.classnames).read_text())
    templates = json.loads(in_run(run, cfg.templates).read_text())
    items = labelled_images(in_run(run, cfg.images), classnames)
    images, labels, keys = [], [], []
    tally = Tally("evaluation images", n_in=len(items))
    for key, data, label in items:
        try:
            im = Image.open(io.BytesIO(data))
            im.load()
        except Exception:
            tally.drop("eval/unreadable_image")
            continue
        images.append(im)
        labels.append(label)
        keys.append(key)
    tally.kept = len(images)
    feats = embed_images(model, images, cfg.batch_size)
    y = torch.tensor(labels)
    logits = feats @ classifier_weights(model, tok, classnames, templates).cpu()
    zs = accuracy_report(logits, y, classnames)
    zs.update(head_tail_report(logits, y, classnames, training_counts(run)))
    zs["chance_top1"] = 1 / len(classnames)
    val_tars = []
    final = shards_final(run)
    if storage.exists(storage.join(final, "manifest.json")):
        val_tars = read_manifest(final, "val")
    results = {"zero_shot": zs, "retrieval": retrieval(model, tok, val_tars, cfg.batch_size),
               "linear_probe": linear_probe(feats, y, keys, cfg.probe_val_fraction, len(classnames)),
               "checkpoint": str(ckpt)}
    out = out_stage.path
    atomic_write_json(out / "results.json", results)
    plot_confusion(zs["confusion"], classnames, out / "confusion.png")
    stats = tally.as_dict()
    stats.update({"zero_shot_top1": zs["top1"], "zero_shot_top5": zs["top5"], "zero_shot_top1_head": zs["top1_head"],
                  "zero_shot_top1_tail": zs["top1_tail"], "chance_top1": zs["chance_top1"]})
    out_stage.finish(stats)
    return stats

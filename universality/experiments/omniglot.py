"""Omniglot (Lake et al. 2015) for Figs. 3-4: loader, 5-way 1-shot protocol, shear and scale shifts.

The dataset is not downloaded: point ``--omniglot DIR`` at a folder with the standard layout

    DIR/images_background/<alphabet>/<character>/<drawing>.png   (meta-training characters)
    DIR/images_evaluation/<alphabet>/<character>/<drawing>.png   (meta-test characters)

(only one of the two is needed: a single split is divided 2:1 into training and test characters).
Images are read with Pillow (matplotlib's own dependency), turned to grey, inverted (strokes = 1)
and resized to ``size`` x ``size`` (28 in Finn et al. 2017). Training tasks rotate each class by a
multiple of 90 degrees (Santoro et al. 2016). Out of distribution, the test characters are
sheared (x' = x + s y) or scaled down about the centre: both support and query images of a task.

The learners are MAML on a small convolutional net (3x3 convolutions with stride 2 and ReLU, a
linear head; no batch norm so ``functional_call`` needs no buffers) and a SNAIL-style classifier
(the same kind of embedding, with its filter count chosen to match MAML's parameter count, then
attention and a causal TC block over the (embedding, one-hot label) pairs and the query embedding).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SPLITS = ("images_background", "images_evaluation")


class OmniglotError(ValueError):
    pass


def check_root(path) -> Path:
    """The dataset folder, checked: it must hold images_background/ or images_evaluation/ with
    alphabet/character/*.png beneath. Raises OmniglotError (one line)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise OmniglotError(f"{str(path)!r} is not a folder")
    present = [s for s in SPLITS if (root / s).is_dir()]
    if not present:
        raise OmniglotError(f"{str(path)!r} has neither images_background/ nor images_evaluation/")
    n = sum(len(characters(root / s)) for s in present)
    if n < 10:
        raise OmniglotError(f"{str(path)!r}: found {n} characters with >= 2 PNG drawings; need at least 10")
    return root


def characters(split_dir: Path) -> list[list[Path]]:
    """The drawings of each character (alphabet/character/*.png), sorted; characters with < 2 skipped."""
    out = []
    for alphabet in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        for char in sorted(p for p in alphabet.iterdir() if p.is_dir()):
            files = sorted(char.glob("*.png"))
            if len(files) >= 2:
                out.append(files)
    return out


def load_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L").resize((size, size), Image.Resampling.LANCZOS)
        a = np.asarray(im, dtype=np.float32) / 255.0
    return 1.0 - a  # strokes (black on white) become 1


def load(root, size: int = 28) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(training characters, test characters): lists of arrays (drawings, size, size) in [0, 1]."""
    root = check_root(root)
    splits = {s: [np.stack([load_image(f, size) for f in files]) for files in characters(root / s)]
              for s in SPLITS if (root / s).is_dir()}
    if len(splits) == 2:
        return splits["images_background"], splits["images_evaluation"]
    chars = next(iter(splits.values()))
    cut = max(5, (2 * len(chars)) // 3)
    return chars[:cut], chars[cut:] if len(chars) - cut >= 5 else chars[:cut]


def affine(img: np.ndarray, shear: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Shear (x' = x + shear * y, about the centre) and scale (about the centre) an image (Pillow)."""
    from PIL import Image

    n = img.shape[0]
    c = (n - 1) / 2.0
    # Pillow's AFFINE maps output (x, y) to input (a x + b y + c0, d x + e y + f0): the inverse map
    inv = np.linalg.inv(np.array([[scale, scale * shear], [0.0, scale]]))
    a, b, d, e = inv[0, 0], inv[0, 1], inv[1, 0], inv[1, 1]
    c0 = c - a * c - b * c
    f0 = c - d * c - e * c
    im = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    out = im.transform((n, n), Image.Transform.AFFINE, (a, b, c0, d, e, f0), resample=Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255.0


def sample_task(rng: np.random.Generator, chars: list[np.ndarray], ways: int, queries: int,
                rotate: bool = False, shear: float = 0.0, scale: float = 1.0):
    """One N-way 1-shot task: support (ways, size, size), its labels 0..ways-1, and
    ``queries`` query images per class with their labels."""
    pick = rng.choice(len(chars), size=ways, replace=False)
    sx, sy, qx, qy = [], [], [], []
    for label, ci in enumerate(pick):
        drawings = chars[ci]
        k = rng.integers(0, 4) if rotate else 0
        take = rng.choice(len(drawings), size=min(len(drawings), 1 + queries), replace=False)
        imgs = [np.rot90(drawings[i], k) for i in take]
        if shear or scale != 1.0:
            imgs = [affine(im, shear, scale) for im in imgs]
        sx.append(imgs[0])
        sy.append(label)
        for im in imgs[1:]:
            qx.append(im)
            qy.append(label)
    return (np.stack(sx)[:, None], np.array(sy), np.stack(qx)[:, None], np.array(qy))


def transforms(profile) -> list[dict]:
    out = [{"name": "none", "kind": "none", "value": 0.0}]
    out += [{"name": f"shear {s:g}", "kind": "shear", "value": float(s)} for s in profile.omni_shears if s]
    out += [{"name": f"scale {s:g}", "kind": "scale", "value": float(s)} for s in profile.omni_scales if s != 1.0]
    return out


# ---- learners and the job (torch) ----------------------------------------------------------------
def _conv_embed(filters: int, size: int):
    from torch import nn

    layers, n, c = [], size, 1
    for _ in range(3):
        layers += [nn.Conv2d(c, filters, 3, stride=2, padding=1), nn.ReLU()]
        c, n = filters, (n + 1) // 2
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), filters * n * n


def build_conv(filters: int, size: int, ways: int):
    from torch import nn

    body, dim = _conv_embed(filters, size)
    return nn.Sequential(body, nn.Linear(dim, ways))


def build_snail(filters: int, size: int, ways: int):
    import torch
    from torch import nn

    from .learners import AttentionBlock, DenseTCBlock

    class SnailClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, dim = _conv_embed(filters, size)
            c, w = dim + ways, 4  # small attention/TC widths; the parameter budget goes to the embedding
            self.att1 = AttentionBlock(c, w, w)
            self.tc = DenseTCBlock(c + w, w, 1)
            self.att2 = AttentionBlock(c + 2 * w, w, w)
            self.out = nn.Linear(c + 3 * w, ways)
            self.ways = ways

        def forward(self, sx, sy, qx):
            # sx (B, W, 1, s, s), sy (B, W), qx (B, Q, 1, s, s) -> logits (B, Q, W)
            b, w = sy.shape
            q = qx.shape[1]
            es = self.embed(sx.flatten(0, 1)).reshape(b, w, -1)
            eq = self.embed(qx.flatten(0, 1)).reshape(b, q, -1)
            lab = nn.functional.one_hot(sy, self.ways).float()
            support = torch.cat([es, lab], -1)[:, None].expand(b, q, w, -1)
            query = torch.cat([eq, torch.zeros(b, q, self.ways)], -1)[:, :, None]
            seq = torch.cat([support, query], 2).reshape(b * q, w + 1, -1).transpose(1, 2)
            h = self.att2(self.tc(self.att1(seq)))
            return self.out(h[:, :, -1]).reshape(b, q, -1)

    return SnailClassifier()


def run_omniglot_job(job) -> dict:
    import torch
    from torch.func import functional_call, grad, vmap

    from .learners import count_params, width_for
    from .runs import _rngs

    p = job.profile
    rng, test_rng = _rngs(job)
    train_chars, test_chars = load(job.data, p.omni_size)
    if len(train_chars) < p.omni_ways or len(test_chars) < p.omni_ways:
        raise OmniglotError(f"need at least {p.omni_ways} characters in each split")
    ce = torch.nn.functional.cross_entropy

    def batch(r, chars, n, **kw):
        ts = [sample_task(r, chars, p.omni_ways, p.omni_queries, **kw) for _ in range(n)]
        return tuple(torch.as_tensor(np.stack([t[i] for t in ts])) for i in range(4))

    conv = build_conv(p.omni_filters, p.omni_size, p.omni_ways)
    snail = build_snail(width_for(lambda w: build_snail(w, p.omni_size, p.omni_ways), count_params(conv)),
                        p.omni_size, p.omni_ways)

    def loss(params, x, y):
        return ce(functional_call(conv, params, (x,)), y)

    def adapt(params, x, y, steps):
        for _ in range(steps):
            g = grad(loss)(params, x, y)
            params = {k: params[k] - p.omni_alpha * g[k] for k in params}
        return params

    def task_loss(params, sx, sy, qx, qy):
        return loss(adapt(params, sx, sy, p.omni_steps), qx, qy)

    def meta_loss(params, sx, sy, qx, qy):
        return vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(params, sx, sy, qx, qy).mean()

    opt = torch.optim.Adam(conv.parameters(), lr=1e-3)
    opt_s = torch.optim.Adam(snail.parameters(), lr=1e-3)
    probe = batch(test_rng, train_chars, 8, rotate=True)

    def maml_probe():
        return float(meta_loss({k: v.detach() for k, v in conv.named_parameters()}, *probe))

    def snail_probe():
        with torch.no_grad():
            return float(ce(snail(probe[0], probe[1], probe[2]).flatten(0, 1), probe[3].flatten()))

    before = {"maml": maml_probe(), "snail": snail_probe()}
    for _ in range(p.omni_iters):
        sx, sy, qx, qy = batch(rng, train_chars, p.omni_meta_batch, rotate=True)
        g = grad(meta_loss)(dict(conv.named_parameters()), sx, sy, qx, qy)
        for k, prm in conv.named_parameters():
            prm.grad = g[k]
        opt.step()
        opt_s.zero_grad(set_to_none=True)
        ce(snail(sx, sy, qx).flatten(0, 1), qy.flatten()).backward()
        opt_s.step()
    after = {"maml": maml_probe(), "snail": snail_probe()}
    ts = transforms(p)
    acc = {"maml": [], "snail": []}
    for t in ts:
        kw = {"shear": t["value"]} if t["kind"] == "shear" else {"scale": t["value"]} if t["kind"] == "scale" else {}
        draw = np.random.default_rng(np.random.SeedSequence([job.root_seed, job.seed_index, 99]))
        sx, sy, qx, qy = batch(draw, test_chars, p.omni_test_tasks, **kw)  # same tasks at every shift
        params = {k: v.detach() for k, v in conv.named_parameters()}
        adapted = vmap(lambda a, b: adapt(params, a, b, p.omni_steps))(sx, sy)
        logits = vmap(lambda prm, x: functional_call(conv, prm, (x,)))(adapted, qx)
        acc["maml"].append((logits.argmax(-1) == qy).float().mean(-1).detach().numpy())
        with torch.no_grad():
            acc["snail"].append((snail(sx, sy, qx).argmax(-1) == qy).float().mean(-1).numpy())
    # Fig. 4: fine-tune for many steps on the support set (plain tasks); MAML's initialisation against a
    # randomly initialised net of the same architecture (query accuracy; the random net's support accuracy)
    draw = np.random.default_rng(np.random.SeedSequence([job.root_seed, job.seed_index, 99]))
    sx, sy, qx, qy = batch(draw, test_chars, p.omni_test_tasks)
    random_net = build_conv(p.omni_filters, p.omni_size, p.omni_ways)

    def finetune_curve(params):
        def one(x_s, y_s, x_q, y_q):
            prm, q_acc, s_acc = params, [], []
            for i in range(p.omni_finetune_steps + 1):
                q_acc.append((functional_call(conv, prm, (x_q,)).argmax(-1) == y_q).float().mean())
                s_acc.append((functional_call(conv, prm, (x_s,)).argmax(-1) == y_s).float().mean())
                if i < p.omni_finetune_steps:
                    g = grad(loss)(prm, x_s, y_s)
                    prm = {k: prm[k] - p.omni_alpha * g[k] for k in prm}
            return torch.stack(q_acc), torch.stack(s_acc)

        q, s_ = vmap(one)(sx, sy, qx, qy)
        return q.detach().numpy().T, s_.detach().numpy().T  # (steps+1, tasks)

    fm, fm_train = finetune_curve({k: v.detach() for k, v in conv.named_parameters()})
    fr, fr_train = finetune_curve({k: v.detach() for k, v in random_net.named_parameters()})
    return {"transforms": ts, "acc": {k: np.stack(v) for k, v in acc.items()},
            "finetune": {"maml": fm, "maml_support": fm_train, "random": fr, "random_support": fr_train},
            "params": {"maml": count_params(conv), "snail": count_params(snail)},
            "train": {f"omniglot-{k}": {"before": before[k], "after": after[k], "history": []} for k in before}}

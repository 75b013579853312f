"""One seed (and configuration) of each experiment: train the learners, evaluate them on paired test
tasks, return plain NumPy arrays. Runs in a worker process; imports torch.

Every job is a picklable :class:`Job`; :func:`run_job` is what the engine calls. Reproducible:
the job's NumPy generator and torch seed come from ``SeedSequence([root, seed_index, kind, ...])``,
and the test tasks of a seed from ``SeedSequence([root, seed_index])`` alone, so every depth of one
seed sees the same test tasks (paired comparisons).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import tasks as T
from .profiles import Profile

KIND_CODE = {"sinusoid": 1, "depth": 2, "omniglot": 3}


@dataclass(frozen=True)
class Job:
    kind: str                 # "sinusoid" | "depth" | "omniglot"
    root_seed: int
    seed_index: int
    profile: Profile
    learners: tuple = ()      # sinusoid: which learners to train ("maml", "tc", "snail", "lstm")
    depth: int = 0            # depth: hidden layers
    threads: int = 1
    data: str | None = None   # omniglot: the dataset folder

    @property
    def label(self) -> str:
        extra = f", {self.depth} hidden layers" if self.kind == "depth" else ""
        return f"{self.kind} seed {self.seed_index}{extra}"


def _rngs(job: Job):
    import torch

    ss = np.random.SeedSequence([job.root_seed, job.seed_index, KIND_CODE[job.kind], job.depth])
    torch.manual_seed(int(ss.generate_state(1, np.uint64)[0] % (2**63)))
    test = np.random.default_rng(np.random.SeedSequence([job.root_seed, job.seed_index]))
    return np.random.default_rng(ss), test


def run_job(job: Job) -> dict:
    """Run one job in this process with ``job.threads`` torch threads; returns plain arrays."""
    import torch

    torch.set_num_threads(max(1, job.threads))
    t0 = time.perf_counter()
    if job.kind == "sinusoid":
        out = _sinusoid(job)
    elif job.kind == "depth":
        out = _depth(job)
    elif job.kind == "omniglot":
        from .omniglot import run_omniglot_job

        out = run_omniglot_job(job)
    else:
        raise ValueError(f"unknown job kind {job.kind!r}")
    out["seconds"] = time.perf_counter() - t0
    out["job"] = {"kind": job.kind, "seed_index": job.seed_index, "depth": job.depth}
    return out


def _t(a):
    import torch

    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


def _batch_tensors(b: T.TaskBatch):
    return _t(b.xs), _t(b.ys), _t(b.xq), _t(b.yq), _t(b.params)


def _adam_loop(params, loss_of_batch, sample, iters: int, lr: float):
    """Plain Adam on ``loss_of_batch(batch)``; returns the per-iteration losses."""
    import torch

    opt = torch.optim.Adam(params, lr=lr)
    hist = np.empty(iters)
    for i in range(iters):
        loss = loss_of_batch(sample())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist[i] = float(loss.detach())
    return hist


def train_maml(maml, sample, iters: int, lr: float):
    """Meta-train with Adam; the gradient is torch.func.grad of the vmapped adapted loss."""
    import torch

    model = maml.model
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = np.empty(iters)
    for i in range(iters):
        xs, ys, xq, yq, _ = sample()
        params = dict(model.named_parameters())
        loss, g = maml.meta_loss_and_grad(params, xs, ys, xq, yq)
        for k, p in model.named_parameters():
            p.grad = g[k]
        opt.step()
        hist[i] = float(loss)
    return hist


def _tc_curve(model, xs, ys, xq, yq, task, lr: float, steps: int):
    """Fine-tune the task-conditioned model on each task's support set by gradient descent (per task,
    vmapped); query MSE after 0..steps steps: (B, steps+1)."""
    import torch
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, x, y, tau):
        return ((functional_call(model, p, (x[None], tau[None]))[0] - y) ** 2).mean()

    def one(x_s, y_s, x_q, y_q, tau):
        p, out = params, [loss(params, x_q, y_q, tau)]
        for _ in range(steps):
            g = grad(loss)(p, x_s, y_s, tau)
            p = {k: p[k] - lr * g[k] for k in p}
            out.append(loss(p, x_q, y_q, tau))
        return torch.stack(out)

    return vmap(one)(xs, ys, xq, yq, task).detach().numpy()


def _sinusoid(job: Job) -> dict:
    import torch

    from .learners import (MAML, SNAIL, BiasTransformMLP, LSTMLearner, TaskConditioned, count_params,
                           mse, width_for)

    p = job.profile
    rng, test_rng = _rngs(job)
    draws = T.sinusoid_test_draws(test_rng, p.test_tasks, p.k, p.test_queries)
    train_probe = _batch_tensors(T.sample_sinusoid(test_rng, 50, p.k, p.queries))

    def sample():
        return _batch_tensors(T.sample_sinusoid(rng, p.meta_batch, p.k, p.queries))

    def at(amp=0.0, phase=0.0):
        return _batch_tensors(T.sinusoid_tasks_at(draws, amp, phase))

    out: dict = {"params": {}, "train": {}}
    net = BiasTransformMLP(hidden=p.hidden, layers=p.layers, bt_dim=p.bt_dim)
    target = count_params(net)
    if "maml" in job.learners:
        maml = MAML(net, alpha=p.alpha, steps=p.train_steps, first_order=p.first_order)
        before = float(maml.meta_loss(maml.params(), *train_probe[:4]))
        t0 = time.perf_counter()
        hist = train_maml(maml, sample, p.maml_iters, p.meta_lr)
        secs = time.perf_counter() - t0
        after = float(maml.meta_loss(maml.params(), *train_probe[:4]))
        out["params"]["maml"] = target
        out["train"]["maml"] = {"before": before, "after": after, "history": _thin(hist), "seconds": secs,
                                "iterations": p.maml_iters}
        curves = {}
        for name, (a, ph) in {"in": (0, 0), "amplitude": (1, 0), "phase": (0, 1)}.items():
            xs, ys, xq, yq, _ = at(a, ph)
            curves[name] = maml.curve(xs, ys, xq, yq, p.max_steps).numpy()
        out["maml_steps"] = curves
        out["maml_shift"] = {axis: np.stack([
            maml.curve(*at(s if axis == "amplitude" else 0, s if axis == "phase" else 0)[:4],
                       p.train_steps).numpy()[:, -1] for s in p.shifts]) for axis in ("amplitude", "phase")}
    if "tc" in job.learners:
        w = width_for(lambda w: TaskConditioned(d_task=2, hidden=w, layers=p.layers), target)
        tc = TaskConditioned(d_task=2, hidden=w, layers=p.layers)

        def tc_loss(batch):
            xs, ys, xq, yq, tau = batch
            return mse(tc(torch.cat([xs, xq], 1), tau), torch.cat([ys, yq], 1))

        before = float(tc_loss(train_probe).detach())
        t0 = time.perf_counter()
        hist = _adam_loop(tc.parameters(), tc_loss, sample, p.baseline_iters, p.meta_lr)
        secs = time.perf_counter() - t0
        out["params"]["tc"] = count_params(tc)
        out["train"]["tc"] = {"before": before, "after": float(tc_loss(train_probe).detach()),
                              "history": _thin(hist), "seconds": secs, "iterations": p.baseline_iters}
        out["tc_steps"] = {name: _tc_curve(tc, *at(a, ph)[:4], at(a, ph)[4], p.tc_lr, p.max_steps)
                           for name, (a, ph) in {"in": (0, 0), "amplitude": (1, 0), "phase": (0, 1)}.items()}
    for name, build in (("snail", lambda w: SNAIL(width=w, k=p.k)), ("lstm", lambda w: LSTMLearner(width=w))):
        if name not in job.learners:
            continue
        model = build(width_for(build, target))

        def loss(batch, model=model):
            xs, ys, xq, yq, _ = batch
            return mse(model(xs, ys, xq), yq)

        before = float(loss(train_probe).detach())
        t0 = time.perf_counter()
        hist = _adam_loop(model.parameters(), loss, sample, p.baseline_iters, p.meta_lr)
        secs = time.perf_counter() - t0
        out["params"][name] = count_params(model)
        out["train"][name] = {"before": before, "after": float(loss(train_probe).detach()),
                              "history": _thin(hist), "seconds": secs, "iterations": p.baseline_iters}
        with torch.no_grad():
            shift = {}
            for axis in ("amplitude", "phase"):
                rows = []
                for s in p.shifts:
                    xs, ys, xq, yq, _ = at(s if axis == "amplitude" else 0, s if axis == "phase" else 0)
                    rows.append(((model(xs, ys, xq) - yq) ** 2).mean(dim=(1, 2)).numpy())
                shift[axis] = np.stack(rows)
        out[f"{name}_shift"] = shift
    return out


def _thin(hist: np.ndarray, points: int = 50) -> list:
    """A short training curve: means of ``points`` equal chunks."""
    if hist.size == 0:
        return []
    chunks = np.array_split(hist, min(points, hist.size))
    return [float(c.mean()) for c in chunks]


def _depth(job: Job) -> dict:
    import torch

    from .learners import MAML, BiasTransformMLP, TaskConditioned, count_params, mse, width_for

    p = job.profile
    rng, test_rng = _rngs(job)
    test = _batch_tensors(T.sample_polynomial(test_rng, p.depth_test_tasks, p.depth_k))
    probe = _batch_tensors(T.sample_polynomial(test_rng, 50, p.depth_k))

    def sample():
        return _batch_tensors(T.sample_polynomial(rng, p.depth_meta_batch, p.depth_k))

    build = lambda w: BiasTransformMLP(hidden=w, layers=job.depth, bt_dim=p.bt_dim)  # noqa: E731
    net = build(width_for(build, p.depth_params))
    maml = MAML(net, alpha=p.depth_alpha, steps=1, first_order=p.first_order)
    before = float(maml.meta_loss(maml.params(), *probe[:4]))
    t0 = time.perf_counter()
    hist = train_maml(maml, sample, p.depth_iters, p.meta_lr)
    maml_s = time.perf_counter() - t0
    after = float(maml.meta_loss(maml.params(), *probe[:4]))
    maml_err = maml.curve(*test[:4], 1).numpy()[:, -1]

    build_o = lambda w: TaskConditioned(d_task=4, hidden=w, layers=job.depth)  # noqa: E731
    oracle = build_o(width_for(build_o, p.depth_params))

    def o_loss(batch):
        xs, ys, xq, yq, tau = batch
        return mse(oracle(torch.cat([xs, xq], 1), tau), torch.cat([ys, yq], 1))

    o_before = float(o_loss(probe).detach())
    t0 = time.perf_counter()
    o_hist = _adam_loop(oracle.parameters(), o_loss, sample, p.depth_iters, p.meta_lr)
    oracle_s = time.perf_counter() - t0
    with torch.no_grad():
        xs, ys, xq, yq, tau = test
        oracle_err = ((oracle(xq, tau) - yq) ** 2).mean(dim=(1, 2)).numpy()
    return {"depth": job.depth, "params": {"maml": count_params(net), "oracle": count_params(oracle)},
            "train": {"maml": {"before": before, "after": after, "history": _thin(hist), "seconds": maml_s,
                               "iterations": p.depth_iters},
                      "oracle": {"before": o_before, "after": float(o_loss(probe).detach()),
                                 "history": _thin(o_hist), "seconds": oracle_s, "iterations": p.depth_iters}},
            "maml_err": maml_err, "oracle_err": oracle_err}

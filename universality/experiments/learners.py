"""The learners of Sec. 7, in PyTorch (optional dependency).

- :class:`BiasTransformMLP` + :class:`MAML`: a ReLU MLP whose input is concatenated with a learned
  bias-transformation vector (Finn et al. 2017b; the paper's Sec. 4 model), adapted by gradient
  descent on every parameter. The inner loop is ``torch.func.grad`` of a ``functional_call``;
  meta-batches are ``torch.func.vmap``-ed; the outer gradient is ``torch.func.grad`` of the whole
  adapted loss, so it is second order through all inner steps unless ``first_order`` (then the inner
  gradients are detached: FOMAML).
- :class:`SNAIL`: causal temporal-convolution (dense TC blocks with gated activations) and causal
  soft-attention blocks (Mishra et al. 2018), reading the K (x, y) pairs and then (x*, 0).
- :class:`LSTMLearner`: an LSTM reading the same sequence (Santoro et al. 2016 style).
- :class:`TaskConditioned`: a ReLU MLP on (x, true task parameters); trained by plain regression,
  fine-tuned by gradient descent at test time (the paper's task-conditioned baseline / oracle).

Widths are chosen by :func:`width_for` so the parameter counts match a target (reported in the
results).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, grad, vmap


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class BiasTransformMLP(nn.Module):
    """ReLU MLP on [x; b] with b a learned bias-transformation vector of ``bt_dim`` entries."""

    def __init__(self, d_in: int = 1, d_out: int = 1, hidden: int = 40, layers: int = 2, bt_dim: int = 10):
        super().__init__()
        self.bt = nn.Parameter(torch.zeros(bt_dim)) if bt_dim else None
        dims = [d_in + bt_dim] + [hidden] * layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], d_out)

    def forward(self, x):
        if self.bt is not None:
            x = torch.cat([x, self.bt.expand(*x.shape[:-1], self.bt.shape[0])], dim=-1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)


def mse(pred, y):
    return ((pred - y) ** 2).mean()


class MAML:
    """Model-agnostic meta-learning on a module, written with ``torch.func``.

    ``adapt`` runs ``steps`` inner gradient steps of size ``alpha`` on the support set and returns
    the adapted parameters; ``meta_grad`` is the gradient of the mean query loss after adaptation
    over a meta-batch (vmapped), through the inner steps (second order) or not (``first_order``).
    """

    def __init__(self, model: nn.Module, alpha: float = 0.01, steps: int = 1, first_order: bool = False):
        self.model, self.alpha, self.steps, self.first_order = model, alpha, steps, first_order

    def params(self) -> dict:
        return {k: v.detach() for k, v in self.model.named_parameters()}

    def loss(self, params, x, y):
        return mse(functional_call(self.model, params, (x,)), y)

    def adapt(self, params, x, y, steps: int | None = None):
        g_fn = grad(self.loss)
        for _ in range(self.steps if steps is None else steps):
            g = g_fn(params, x, y)
            if self.first_order:
                g = {k: v.detach() for k, v in g.items()}
            params = {k: params[k] - self.alpha * g[k] for k in params}
        return params

    def task_loss(self, params, xs, ys, xq, yq):
        return self.loss(self.adapt(params, xs, ys), xq, yq)

    def meta_loss(self, params, xs, ys, xq, yq):
        return vmap(self.task_loss, in_dims=(None, 0, 0, 0, 0))(params, xs, ys, xq, yq).mean()

    def meta_grad(self, params, xs, ys, xq, yq):
        return grad(self.meta_loss)(params, xs, ys, xq, yq)

    def meta_loss_and_grad(self, params, xs, ys, xq, yq):
        """(loss, gradient) of :meth:`meta_loss` in one pass (``torch.func.grad`` with ``has_aux``)."""
        def f(p):
            loss = self.meta_loss(p, xs, ys, xq, yq)
            return loss, loss.detach()

        g, loss = grad(f, has_aux=True)(params)
        return loss, g

    def curve(self, xs, ys, xq, yq, max_steps: int):
        """Per-task query MSE after 0..max_steps inner steps on the same support set: (B, max_steps+1)."""
        params = self.params()

        def one(x_s, y_s, x_q, y_q):
            p, out = params, [self.loss(params, x_q, y_q)]
            g_fn = grad(self.loss)
            for _ in range(max_steps):
                g = g_fn(p, x_s, y_s)
                p = {k: p[k] - self.alpha * g[k] for k in p}
                out.append(self.loss(p, x_q, y_q))
            return torch.stack(out)

        return vmap(one)(xs, ys, xq, yq).detach()


def _causal_conv(x, conv, dilation):
    # x (B, C, T): left-pad so output t sees inputs <= t
    return conv(nn.functional.pad(x, (dilation, 0)))


class DenseTCBlock(nn.Module):
    """SNAIL's DenseBlock: gated causal dilated convolution, output concatenated to the input."""

    def __init__(self, c_in: int, filters: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.f = nn.Conv1d(c_in, filters, 2, dilation=dilation)
        self.g = nn.Conv1d(c_in, filters, 2, dilation=dilation)

    def forward(self, x):
        a = torch.tanh(_causal_conv(x, self.f, self.dilation)) * torch.sigmoid(_causal_conv(x, self.g, self.dilation))
        return torch.cat([x, a], dim=1)


class AttentionBlock(nn.Module):
    """SNAIL's causal soft attention; its read is concatenated to the input."""

    def __init__(self, c_in: int, key: int, value: int):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(c_in, key), nn.Linear(c_in, key), nn.Linear(c_in, value)
        self.scale = 1.0 / math.sqrt(key)

    def forward(self, x):  # x (B, C, T)
        h = x.transpose(1, 2)
        logits = self.q(h) @ self.k(h).transpose(1, 2) * self.scale
        t = h.shape[1]
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        read = torch.softmax(logits.masked_fill(mask, float("-inf")), dim=-1) @ self.v(h)
        return torch.cat([x, read.transpose(1, 2)], dim=1)


def _sequence(xs, ys, xq):
    """(B, K, d), (B, K, 1), (B, Q, d) -> (B*Q, K+1, d+1+1): the K pairs then (x*, 0), with a flag."""
    b, k, _ = xs.shape
    q = xq.shape[1]
    support = torch.cat([xs, ys, torch.zeros_like(ys)], dim=-1)            # (B, K, d+2)
    support = support[:, None].expand(b, q, k, support.shape[-1])
    query = torch.cat([xq, torch.zeros_like(xq[..., :1]), torch.ones_like(xq[..., :1])], dim=-1)
    seq = torch.cat([support, query[:, :, None]], dim=2)                    # (B, Q, K+1, d+2)
    return seq.reshape(b * q, k + 1, -1)


class SNAIL(nn.Module):
    """A SNAIL-style meta-learner for regression: reads (x_1, y_1) ... (x_K, y_K), (x*, ?) and
    predicts y* at the last time step. Architecture: attention, TC block, attention (Mishra et al.)."""

    def __init__(self, d_in: int = 1, d_out: int = 1, width: int = 16, k: int = 5):
        super().__init__()
        c = d_in + 2
        self.embed = nn.Linear(c, width)
        c = width
        self.att1 = AttentionBlock(c, width, width)
        c += width
        self.tcs = nn.ModuleList()
        dilation = 1
        while dilation < k + 1:
            self.tcs.append(DenseTCBlock(c, width, dilation))
            c += width
            dilation *= 2
        self.att2 = AttentionBlock(c, width, width)
        c += width
        self.out = nn.Linear(c, d_out)

    def forward(self, xs, ys, xq):
        seq = _sequence(xs, ys, xq)
        h = torch.relu(self.embed(seq)).transpose(1, 2)
        h = self.att1(h)
        for tc in self.tcs:
            h = tc(h)
        h = self.att2(h)
        return self.out(h[:, :, -1]).reshape(xq.shape[0], xq.shape[1], -1)


class LSTMLearner(nn.Module):
    """An LSTM reading the K (x, y) pairs and then (x*, 0); y* is read off the last hidden state."""

    def __init__(self, d_in: int = 1, d_out: int = 1, width: int = 32):
        super().__init__()
        self.lstm = nn.LSTM(d_in + 2, width, batch_first=True)
        self.out = nn.Linear(width, d_out)

    def forward(self, xs, ys, xq):
        h, _ = self.lstm(_sequence(xs, ys, xq))
        return self.out(h[:, -1]).reshape(xq.shape[0], xq.shape[1], -1)


class TaskConditioned(nn.Module):
    """ReLU MLP on [x; task parameters] (the paper's task-conditioned model / oracle)."""

    def __init__(self, d_in: int = 1, d_task: int = 2, d_out: int = 1, hidden: int = 40, layers: int = 2):
        super().__init__()
        dims = [d_in + d_task] + [hidden] * layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], d_out)

    def forward(self, x, task):
        h = torch.cat([x, task[:, None, :].expand(*x.shape[:-1], task.shape[-1])], dim=-1)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.out(h)


def width_for(build, target: int, lo: int = 1) -> int:
    """The width w whose model ``build(w)`` has the parameter count closest to ``target`` (counts grow
    with the width: double until past the target, then bisect, keeping the nearest seen)."""
    hi = lo
    while count_params(build(hi)) < target:
        lo, hi = hi, hi * 2
    best, best_gap = hi, abs(count_params(build(hi)) - target)
    while lo <= hi:
        mid = (lo + hi) // 2
        n = count_params(build(mid))
        if abs(n - target) < best_gap:
            best, best_gap = mid, abs(n - target)
        if n < target:
            lo = mid + 1
        elif n > target:
            hi = mid - 1
        else:
            return mid
    return best

"""Sizes and iteration counts of the experiment profiles (no torch needed).

- ``tiny``: seconds; for the tests only (the directions are not expected to show).
- ``quick``: every experiment with 3 seeds in <= 15 minutes on a 2-core machine (docs/experiments.md).
- ``paper``: the sizes and iteration counts of the paper and of MAML (Finn et al. 2017) that it
  builds on: sinusoid meta-batch 25, 70,000 meta-iterations, Adam 1e-3, alpha = 0.01, a 40-40 ReLU
  network, K = 5 with 10 query points per task; depth study with about 40,000 parameters, 1 to 5
  hidden layers, bias transformation of dimension 10, one inner step, 40 points per task, 3 seeds.
  The paper's App. G (iteration counts of the depth study and the baselines) was not available:
  we assume the same 70,000 iterations and meta-batch 25 for every learner (docs/experiments.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class Profile:
    name: str
    seeds: int = 3
    # sinusoid (steps, ood)
    k: int = 5
    queries: int = 10             # query points per training task
    hidden: int = 40
    layers: int = 2
    bt_dim: int = 10
    alpha: float = 0.01
    train_steps: int = 5          # MAML's inner steps during meta-training (Fig. 2: 5)
    max_steps: int = 20           # test-time steps evaluated: 0 .. max_steps
    meta_batch: int = 25
    meta_lr: float = 1e-3
    maml_iters: int = 70000
    baseline_iters: int = 70000   # SNAIL, LSTM and the task-conditioned model
    first_order: bool = False
    tc_lr: float = 3e-4           # task-conditioned fine-tuning step (1e-2 diverged, 1e-3 oscillated in distribution)
    test_tasks: int = 100
    test_queries: int = 100
    shifts: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)
    # depth (Fig. 5)
    depth_params: int = 40000
    depth_layers: tuple = (1, 2, 3, 4, 5)
    depth_k: int = 20             # support points of the 40 per task (the rest are queries)
    depth_alpha: float = 0.001
    depth_iters: int = 70000
    depth_meta_batch: int = 25
    depth_test_tasks: int = 100
    # Omniglot (Figs. 3-4, with --omniglot DIR): 5-way 1-shot; MAML as in Finn et al. 2017 (one inner
    # step, alpha = 0.4, meta-batch 32, 60,000 iterations) on a smaller conv net (see omniglot.py)
    omni_ways: int = 5
    omni_queries: int = 5         # query images per class
    omni_alpha: float = 0.4
    omni_steps: int = 1
    omni_iters: int = 60000
    omni_meta_batch: int = 32
    omni_filters: int = 32
    omni_size: int = 28
    omni_test_tasks: int = 100
    omni_shears: tuple = (0.0, 0.3, 0.6)
    omni_scales: tuple = (0.8, 0.6)
    omni_finetune_steps: int = 100  # Fig. 4: fine-tuning steps at test time

    def as_dict(self) -> dict:
        d = asdict(self)
        d["shifts"] = list(self.shifts)
        d["depth_layers"] = list(self.depth_layers)
        d["omni_shears"], d["omni_scales"] = list(self.omni_shears), list(self.omni_scales)
        return d

    def with_(self, **kw) -> "Profile":
        return replace(self, **kw)


PAPER = Profile("paper")
QUICK = Profile("quick", maml_iters=3000, baseline_iters=4000, meta_batch=10, test_tasks=60,
                depth_iters=1200, depth_meta_batch=10, depth_test_tasks=60,
                omni_iters=300, omni_meta_batch=8, omni_filters=16, omni_test_tasks=40)
TINY = Profile("tiny", seeds=2, maml_iters=60, baseline_iters=100, meta_batch=4, max_steps=8, train_steps=2,
               test_tasks=6, test_queries=20, shifts=(0.0, 1.0), depth_params=1500, depth_layers=(1, 2),
               depth_iters=150, depth_meta_batch=4, depth_test_tasks=6,
               omni_iters=20, omni_meta_batch=2, omni_filters=8, omni_size=14, omni_test_tasks=4, omni_queries=1,
               omni_shears=(0.0, 0.5), omni_scales=(0.6,), omni_finetune_steps=3)
PROFILES = {p.name: p for p in (TINY, QUICK, PAPER)}

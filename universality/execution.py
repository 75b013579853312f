"""Compatibility shim: execution now lives in :mod:`universality.engine` (one engine, dense and
sparse backends). ``single_step`` is the one-shot step, ``maml_step`` the K-shot one; the old names
``one_step`` / ``k_shot_step`` / ``StepResult`` / ``KShotResult`` remain importable from here only."""
from __future__ import annotations

from .engine.heads import (HeadOutput, MuxTape, NetHead, NetTape, head, hpost_callable, net_abs_forward,
                           net_backward, net_forward)
from .engine.layers import relu_grad
from .engine.step import Forward, Pass, Step, abs_forward, backward, forward, maml_step, single_step

StepResult = KShotResult = Step
one_step = single_step
k_shot_step = maml_step

__all__ = ["Forward", "HeadOutput", "KShotResult", "MuxTape", "NetHead", "NetTape", "Pass", "Step", "StepResult",
           "abs_forward", "backward", "forward", "head", "hpost_callable", "k_shot_step", "maml_step",
           "net_abs_forward", "net_backward", "net_forward", "one_step", "relu_grad", "single_step"]

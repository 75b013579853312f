"""Executed quantities the claims need beyond one :class:`~universality.execution.StepResult`.

Kept apart from :mod:`.one_step` and :mod:`.loss_claims` so that neither imports the other for it
(the two modules used to import each other).
"""
from __future__ import annotations

import numpy as np


def error_at_z(con, z: np.ndarray, y) -> np.ndarray:
    """dl/dz at the pre-update point, executed through g_pre (W_g) and the loss's ``grad``."""
    yhat = con.Wg @ z
    return con.Wg.T @ np.asarray(con.loss.grad(np.asarray(y, dtype=float), yhat), dtype=float)

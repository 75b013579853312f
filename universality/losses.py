"""Losses l(y, yhat) with their gradient in yhat, and the matrix Lambda of grad l(y, 0) = Lambda y.

The output head g_pre is built from Lambda so that the error reaching z is [0; e_bar(y); e_check(y)]
(paper Sec. 6). Execution uses :meth:`Loss.grad`, never Lambda.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MSE:
    name: str = "mse"
    formula: str = "l(y, yhat) = 1/2 * ||yhat - y||^2;  grad_yhat l = yhat - y"
    paper_ref: str = "Thm 6.1"

    def value(self, y, yhat):
        d = np.asarray(yhat, dtype=float) - np.asarray(y, dtype=float)
        return 0.5 * float(d @ d)

    def grad(self, y, yhat):
        """d l / d yhat (works for NumPy arrays and SymPy matrices alike)."""
        return yhat - y

    def grad_matrix_at_zero(self, dy: int, field):
        """Lambda with grad l(y, 0) = Lambda y: here -I."""
        return -field.eye(dy)

    def inverse_transpose_at_zero(self, dy: int, field):
        """Lambda^{-T}, used to build W_g; for MSE it is -I."""
        return -field.eye(dy)


LOSSES = {"mse": MSE()}


def get_loss(name: str):
    return LOSSES[name]

"""Exact products in a canonical domain: polynomials in (alpha, y) over Q(sqrt(q_1), ..., sqrt(q_k)).

The square roots come from A_i^{1/2} in the weights. SymPy's ``QQ.algebraic_field`` represents
Q(sqrt(q_1), ...) by a primitive element with its exact minimal polynomial, and a polynomial ring
over it keeps every element in a canonical form, so "the residual is 0" is an exact test there
(no simplification heuristics). Used for the N-fold D x D products (second-order-zero,
grad-rank-one), where SymPy expressions with ``expand`` would be slow.
"""
from __future__ import annotations

import sympy as sp
from sympy import QQ
from sympy.polys.matrices import DomainMatrix


class NotPolynomial(ValueError):
    pass


def _surds(mats) -> list:
    found = set()
    for M in mats:
        for e in M:
            if e != 0 and not e.is_Rational:
                found |= {p for p in e.atoms(sp.Pow) if p.is_number}
    return sorted(found, key=sp.default_sort_key)


class PolyDomain:
    """QQ<surds>[gens] for a set of SymPy matrices, with conversions both ways."""

    def __init__(self, mats, gens):
        gens = tuple(g for g in gens if isinstance(g, sp.Symbol))
        surds = _surds(mats)
        self.K0 = QQ.algebraic_field(*surds) if surds else QQ
        self.K = self.K0[gens] if gens else self.K0
        self._surd = {s: self.K.convert_from(self.K0.from_sympy(s), self.K0) for s in surds}
        self._gen = {g: self.K.gens[i] for i, g in enumerate(gens)} if gens else {}

    def element(self, e):
        K = self.K
        out = K.zero
        for term in sp.Add.make_args(sp.expand(e)):
            if term == 0:
                continue
            c, facs = term.as_coeff_mul()
            v = K.convert_from(QQ.from_sympy(c), QQ)
            for f in facs:
                if f in self._surd:
                    v = v * self._surd[f]
                elif f in self._gen:
                    v = v * self._gen[f]
                elif f.is_Pow and f.base in self._gen and f.exp.is_Integer and f.exp > 0:
                    v = v * self._gen[f.base] ** int(f.exp)
                else:
                    raise NotPolynomial(f"{f} is not a known square root or symbol")
            out = out + v
        return out

    def matrix(self, M) -> DomainMatrix:
        rows = {}
        for i in range(M.rows):
            row = {j: self.element(M[i, j]) for j in range(M.cols) if M[i, j] != 0}
            row = {j: v for j, v in row.items() if v}
            if row:
                rows[i] = row
        return DomainMatrix(rows, M.shape, self.K)

    def eye(self, n: int) -> DomainMatrix:
        return DomainMatrix.eye(n, self.K).to_sparse()

    def scalar(self, e):
        return self.element(e)

    @staticmethod
    def to_sympy(dm: DomainMatrix) -> sp.Matrix:
        return dm.to_Matrix()

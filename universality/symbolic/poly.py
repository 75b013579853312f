"""Exact products in a canonical domain: polynomials in (alpha, y) over Q(sqrt(q_1), ..., sqrt(q_k)).

The square roots come from A_i^{1/2} in the weights. SymPy's ``QQ.algebraic_field`` represents
Q(sqrt(q_1), ...) by a primitive element with its exact minimal polynomial, and a polynomial ring
over it keeps every element in a canonical form, so "the residual is 0" is an exact test there
(no simplification heuristics). Used for the N-fold D x D products (second-order-zero,
grad-rank-one), where SymPy expressions with ``expand`` would be slow.
"""
from __future__ import annotations

import functools

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


def _primes(surds) -> list:
    """The primes under the square roots: sqrt(n) = prod sqrt(p) over the primes p of squarefree n."""
    primes = set()
    for s in surds:
        if not (s.is_Pow and s.exp == sp.Rational(1, 2) and s.base.is_Integer and s.base > 0):
            raise NotPolynomial(f"{s} is not the square root of a positive integer")
        primes |= set(sp.factorint(int(s.base)))
    return sorted(primes)


@functools.lru_cache(maxsize=16)
def _field(primes: tuple):
    """Q(sqrt(p_1), ..., sqrt(p_k)) and its prime roots (the primitive element is costly: cached)."""
    roots = [sp.sqrt(p) for p in primes]
    K0 = QQ.algebraic_field(*roots) if roots else QQ
    return K0, {p: K0.from_sympy(r) for p, r in zip(primes, roots)}


class PolyDomain:
    """QQ<surds>[gens] for a set of SymPy matrices, with conversions both ways."""

    def __init__(self, mats, gens):
        gens = tuple(g for g in gens if isinstance(g, sp.Symbol))
        # Q(sqrt(p_1), ..., sqrt(p_k)) over the primes of the weights' square roots: it contains every
        # product of those roots, so the updated weights and gradients live in it too.
        self.K0, roots0 = _field(tuple(_primes(_surds(mats))))
        self.K = self.K0[gens] if gens else self.K0
        self._prime_root = {p: self.K.convert_from(v, self.K0) for p, v in roots0.items()}
        self._surd = {}
        self._gen = {g: self.K.gens[i] for i, g in enumerate(gens)} if gens else {}

    def _root(self, f):
        """sqrt(n) for squarefree n as the product of the prime roots (cached)."""
        if f not in self._surd:
            if not (f.is_Pow and f.exp == sp.Rational(1, 2) and f.base.is_Integer and f.base > 0):
                raise NotPolynomial(f"{f} is not a known square root or symbol")
            v = self.K.one
            for p, k in sp.factorint(int(f.base)).items():
                if p not in self._prime_root:
                    raise NotPolynomial(f"sqrt({p}) is outside Q(sqrt of the weights' primes)")
                v = v * self._prime_root[p] ** k
            self._surd[f] = v
        return self._surd[f]

    def element(self, e):
        K = self.K
        out = K.zero
        for term in sp.Add.make_args(sp.expand(e)):
            if term == 0:
                continue
            c, facs = term.as_coeff_mul()
            v = K.convert_from(QQ.from_sympy(c), QQ)
            for f in facs:
                if f in self._gen:
                    v = v * self._gen[f]
                elif f.is_Pow and f.base in self._gen and f.exp.is_Integer and f.exp > 0:
                    v = v * self._gen[f.base] ** int(f.exp)
                elif f.is_number:
                    v = v * self._root(f)
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

"""Exact products in a canonical domain: polynomials in (alpha, y) over Q(sqrt(p_1), ..., sqrt(p_k)).

The square roots come from A_i^{1/2} in the weights; the p_i are the primes under them. An element
is a rational polynomial in s_i = sqrt(p_i), alpha and y, kept reduced modulo s_i^2 = p_i; that
form is unique, so "the residual is 0" is an exact test (no simplification heuristics). Used for
the N-fold D x D products of second-order-zero, where SymPy expressions with ``expand`` are slow.
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


def _primes(surds) -> list:
    """The primes under the square roots: sqrt(n) = prod sqrt(p) over the primes p of squarefree n."""
    primes = set()
    for s in surds:
        if not (s.is_Pow and s.exp == sp.Rational(1, 2) and s.base.is_Integer and s.base > 0):
            raise NotPolynomial(f"{s} is not the square root of a positive integer")
        primes |= set(sp.factorint(int(s.base)))
    return sorted(primes)


def _powers(e):
    """(base, exponent) of every power of a symbol in ``e``."""
    out = []
    for p in e.atoms(sp.Pow):
        if p.base.is_Symbol and p.exp.is_Integer:
            out.append((p.base, int(p.exp)))
    return out


class PolyDomain:
    """Q(sqrt(p_1), ..., sqrt(p_k))[gens] as QQ[s_1, ..., s_k, gens] reduced modulo s_i^2 = p_i.

    The p_i are the primes under the weights' square roots. Products of distinct prime roots with
    exponents 0 or 1 are linearly independent over Q (Besicovitch 1940), so an element reduced to
    exponents <= 1 in every s_i has exactly one representation: "residual == 0" is an exact test.
    Rational polynomial arithmetic is much faster than SymPy's algebraic-field arithmetic.
    """

    def __init__(self, mats, gens):
        gens = tuple(g for g in gens if isinstance(g, sp.Symbol))
        self.primes = _primes(_surds(mats))
        self.roots = tuple(sp.Symbol(f"s_{p}", positive=True) for p in self.primes)
        # symbols that appear with negative powers (rho of a symbolic ReLU'(0) = rho^2) get an inverse
        # generator g_inv, reduced by g g_inv = 1: Laurent polynomials, still a unique form
        neg = sorted({b for M in mats for e in M for b, x in _powers(e) if b in gens and x < 0},
                     key=sp.default_sort_key)
        self.inverses = tuple(sp.Symbol(f"{g.name}_inv", positive=True) for g in neg)
        self.K = QQ[self.roots + gens + self.inverses]
        self.k = len(self.primes)
        self._prime_root = {p: self.K.gens[i] for i, p in enumerate(self.primes)}
        self._surd = {}
        self._gen = {g: self.K.gens[self.k + i] for i, g in enumerate(gens)}
        self._inv = {g: self.K.gens[self.k + len(gens) + i] for i, g in enumerate(neg)}
        self._pairs = [(self.k + gens.index(g), self.k + len(gens) + i) for i, g in enumerate(neg)]
        self._to_sympy_subs = {r: sp.sqrt(p) for r, p in zip(self.roots, self.primes)}
        self._to_sympy_subs.update({ginv: 1 / g for g, ginv in zip(neg, self.inverses)})

    def reduce(self, v):
        """Exponents of the s_i folded into {0, 1} using s_i^2 = p_i."""
        if not (self.k or self._pairs) or not v:
            return v
        out = {}
        for monom, c in v.terms():
            if all(e < 2 for e in monom[:self.k]) and all(not (monom[a] and monom[b]) for a, b in self._pairs):
                out[monom] = out.get(monom, 0) + c
                continue
            new = list(monom)
            for i in range(self.k):
                q, rem = divmod(monom[i], 2)
                if q:
                    c = c * self.primes[i] ** q
                new[i] = rem
            for a, b in self._pairs:
                m = min(new[a], new[b])
                new[a] -= m
                new[b] -= m
            new = tuple(new)
            out[new] = out.get(new, 0) + c
        return self.K.ring.from_dict({m: c for m, c in out.items() if c})

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
            self._surd[f] = self.reduce(v)
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
                elif f.is_Pow and f.base in self._inv and f.exp.is_Integer and f.exp < 0:
                    v = v * self._inv[f.base] ** int(-f.exp)
                elif f.is_number:
                    v = v * self._root(f)
                else:
                    raise NotPolynomial(f"{f} is not a known square root or symbol")
            out = out + v
        return self.reduce(out)

    def matrix(self, M) -> DomainMatrix:
        rows = {}
        for i in range(M.rows):
            row = {j: self.element(M[i, j]) for j in range(M.cols) if M[i, j] != 0}
            row = {j: v for j, v in row.items() if v}
            if row:
                rows[i] = row
        return DomainMatrix(rows, M.shape, self.K)

    def mul(self, A: DomainMatrix, B: DomainMatrix) -> DomainMatrix:
        """A B with every entry reduced (the canonical form)."""
        return (A * B).applyfunc(self.reduce)

    def scalar(self, e):
        return self.element(e)

    def to_sympy(self, dm: DomainMatrix) -> sp.Matrix:
        return dm.to_Matrix().subs(self._to_sympy_subs).applyfunc(sp.expand)

    def degree(self, dm: DomainMatrix, gen) -> int:
        i = self.K.symbols.index(gen)
        return max((m[i] for row in dm.to_sdm().values() for v in row.values() for m in v.monoms()), default=0)

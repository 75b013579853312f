"""Exact sign analysis of the pre-activations: how each ReLU is decided for a symbolic instance.

An instance fixes the sign of every free symbol (alpha and each label component y_d: alpha takes
the sign of the run's alpha, y_d the sign of the sample's label) and nothing else, so a proof
covers the whole open orthant. A pre-activation is a polynomial p in those symbols with
coefficients in Q(sqrt(...)) (the square roots of the A_i); with a symbolic ReLU'(0) = rho^2 it is a
Laurent polynomial (negative powers of rho > 0), which the same argument covers. Write p = sum_k c_k m_k with monomials
m_k. On the orthant every monomial has a known constant sign, so

* p is the zero polynomial            -> ZERO     (ReLU(p) = 0, ReLU'(p) = r)
* every term c_k m_k has sign +1       -> POS      (ReLU(p) = p, ReLU'(p) = 1)
* every term has sign -1              -> NEG      (ReLU(p) = 0, ReLU'(p) = 0)
* terms of both signs                 -> UNDECIDED (p may change sign on the orthant)
* a coefficient whose sign SymPy cannot decide (is_positive/is_negative both None)
                                       -> UNDECIDED

This is sound (a sum of terms of one strict sign has that sign everywhere on the open orthant)
and never guesses: UNDECIDED stops the run of that instance rather than picking a branch.
Coefficients are nonzero exact algebraic numbers once the polynomial is expanded, so SymPy's
is_positive decides them by interval evaluation; None is still treated as UNDECIDED.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import sympy as sp


class Sign(str, Enum):
    POS = "+"
    NEG = "-"
    ZERO = "0"
    UNDECIDED = "?"


@dataclass(frozen=True)
class Orthant:
    """The free symbols of an instance and the sign each is assumed to have (+1 or -1)."""

    symbols: tuple  # sympy Symbols
    signs: tuple  # +1 / -1, same order

    def sign_of_symbol(self, s) -> int:
        return self.signs[self.symbols.index(s)]

    def describe(self) -> str:
        if not self.symbols:
            return "no free symbols (all values exact rationals)"
        return ", ".join(f"{s} {'> 0' if g > 0 else '< 0'}" for s, g in zip(self.symbols, self.signs))


from ..engine.exact import UndecidedSign  # noqa: E402,F401  (one exception for the engine and the claims)


def _number_sign(c) -> int | None:
    if c == 0:
        return 0
    if c.is_positive:
        return 1
    if c.is_negative:
        return -1
    return None


def decide(expr, orthant: Orthant) -> tuple[Sign, str]:
    """The sign of ``expr`` on the orthant, and a one-line reason."""
    e = sp.expand(expr)
    if e == 0:
        return Sign.ZERO, "zero polynomial"
    free = [s for s in e.free_symbols]
    if not free:
        s = _number_sign(e)
        if s is None:
            return Sign.UNDECIDED, "SymPy cannot decide the sign of this constant"
        return {1: Sign.POS, -1: Sign.NEG, 0: Sign.ZERO}[s], "constant"
    unknown = [s for s in free if s not in orthant.symbols]
    if unknown:
        return Sign.UNDECIDED, f"symbols without a sign assumption: {unknown}"
    syms = set(orthant.symbols)
    coeffs: dict = {}
    for term in sp.Add.make_args(e):
        num, mono = term.as_independent(*orthant.symbols, as_Add=False)
        powers = {} if mono == 1 else mono.as_powers_dict()
        if any(base not in syms or not (ex.is_Integer and ex != 0) for base, ex in powers.items()):
            return Sign.UNDECIDED, "not a polynomial in the instance's symbols"
        coeffs[mono] = coeffs.get(mono, 0) + num
    seen = set()
    for mono, coeff in coeffs.items():
        cs = _number_sign(coeff)
        if cs is None:
            return Sign.UNDECIDED, f"sign of coefficient {coeff} undecided"
        if cs == 0:
            continue
        ms = 1
        for base, ex in ({} if mono == 1 else mono.as_powers_dict()).items():
            ms *= orthant.sign_of_symbol(base) ** int(ex)
        seen.add(cs * ms)
    if not seen:
        return Sign.ZERO, "zero polynomial"
    if len(seen) == 2:
        return Sign.UNDECIDED, "terms of both signs on the orthant"
    return (Sign.POS, "every term > 0") if seen == {1} else (Sign.NEG, "every term < 0")


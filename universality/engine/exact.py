"""The exact backend of the engine: the same :mod:`.step` code in exact arithmetic.

Numbers live in Q(sqrt p_1, ..., sqrt p_k)[alpha, y, rho, rho^-1]: the p_i are the primes under the
square roots of the exact construction's weights (``build(design, ExactField())``), alpha and the
label components y_d may be *symbols* (an instance proof covers their whole sign orthant at once),
rho is a symbolic ReLU'(0) = rho^2. An element is a rational polynomial in s_i = sqrt(p_i) and the
symbols, kept reduced modulo s_i^2 = p_i (and rho rho^-1 = 1). Products of distinct prime roots with
exponents 0 or 1 are linearly independent over Q (Besicovitch 1940), so the reduced form is
canonical: "x == 0" as a polynomial is an exact test, with no simplification heuristics.

* :class:`ExactRing`: the domain (conversion from and to SymPy, the canonical zero test, the sign of
  an element on the current instance's orthant via the same rule as :mod:`universality.symbolic.signs`);
* :class:`Ex`: one element (NumPy object arrays of them are the engine's vectors);
* :class:`ExactLayers`: a :class:`~.layers.Layers` subclass holding the weights sparsely (only the
  entries the builder produced, whatever they are) and overriding the field operations
  (``relu``, ``relu_grad``, ``zeros``, ``asarray``, ``scalar``, ``is_zero``): a ReLU whose sign the
  analysis cannot decide raises :class:`~universality.symbolic.signs.UndecidedSign`, never guesses;
* :class:`ExactConstruction`: the exact construction as the engine sees it (layers, head, the input
  map with the switch theta_b == 0 decided on the orthant, the loss's gradient through SymPy).

``maml_step(ExactConstruction(...), xs, ys, x_star)`` is then the real exact step: forward pass,
reverse-mode backprop, theta' = theta - alpha grad on every entry of every full matrix (kept as the
gradient's factors), K-shot averaging, the passes after the step: the same code as float64.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .layers import Layers


class NotInField(ValueError):
    """A value outside Q(sqrt p)[alpha, y, rho^{+-1}] (e.g. exp(alpha) or an unknown square root)."""


class UndecidedSign(Exception):
    """A pre-activation (or a switch) whose sign exact analysis cannot decide."""

    def __init__(self, where: str, expr, why: str):
        from sympy import sstr

        super().__init__(f"{where}: sign of {sstr(expr)} undecided ({why})")
        self.where, self.expr, self.why = where, expr, why


def _sp():
    import sympy

    return sympy


class ExactRing:
    """Q(sqrt p_1..p_k)[gens, inverse gens] as QQ[s_1..s_k, gens, invs] reduced modulo s_i^2 = p_i.

    ``gens`` are symbol *names* (alpha, y0, ..., rho); ``inverse`` names the gens that may appear with
    negative powers (rho). The instance's sign assumptions (``set_orthant``) decide signs and the
    SymPy symbols a residual is printed with."""

    def __init__(self, primes, gens=(), inverse=()):
        sp = _sp()
        from sympy import QQ
        from sympy.polys.rings import ring

        self.primes = tuple(sorted(primes))
        self.gens = tuple(gens)
        self.inverse = tuple(g for g in inverse if g in self.gens)
        names = [f"s_{p}" for p in self.primes] + list(self.gens) + [f"{g}_inv" for g in self.inverse]
        if names:
            self.R, *g = ring(",".join(names), QQ)
        else:  # pragma: no cover - a field without roots or symbols
            self.R, *g = ring("s_1", QQ)
        self.k = len(self.primes)
        self.root = {p: self.R.gens[i] for i, p in enumerate(self.primes)}
        self.gen = {n: self.R.gens[self.k + i] for i, n in enumerate(self.gens)}
        self.inv = {n: self.R.gens[self.k + len(self.gens) + i] for i, n in enumerate(self.inverse)}
        self._pairs = [(self.k + self.gens.index(n), self.k + len(self.gens) + i) for i, n in enumerate(self.inverse)]
        self.zero = Ex(self, self.R.zero)
        self.one = Ex(self, self.R.one)
        self._surd: dict = {}
        self.orthant: dict = {}  # gen name -> +1 / -1 (the current instance)
        self.symbols: dict = {n: sp.Symbol(n) for n in self.gens}  # gen name -> SymPy symbol (printing)
        self._sign_cache: dict = {}

    # ---- the instance ----------------------------------------------------------------------
    def set_orthant(self, signs: dict, symbols: dict | None = None) -> None:
        """The sign of each free gen for the instance being proved (and the SymPy symbols it prints)."""
        self.orthant = dict(signs)
        self._sign_cache = {}
        if symbols:
            self.symbols.update(symbols)

    # ---- reduction and conversion ---------------------------------------------------------------
    def reduce(self, v):
        """Exponents of the s_i folded into {0, 1} by s_i^2 = p_i; g g_inv = 1."""
        if not (self.k or self._pairs) or not v:
            return v
        k, pairs = self.k, self._pairs
        clean = True
        for monom in v.itermonoms():
            if any(e > 1 for e in monom[:k]) or any(monom[a] and monom[b] for a, b in pairs):
                clean = False
                break
        if clean:
            return v
        out: dict = {}
        for monom, c in v.iterterms():
            new = list(monom)
            for i in range(k):
                q, rem = divmod(monom[i], 2)
                if q:
                    c = c * self.primes[i] ** q
                new[i] = rem
            for a, b in pairs:
                m = min(new[a], new[b])
                new[a] -= m
                new[b] -= m
            t = tuple(new)
            out[t] = out.get(t, 0) + c
        return self.R.from_dict({m: c for m, c in out.items() if c})

    def const(self, q) -> "Ex":
        """A rational constant (int, Fraction, float as its decimal, SymPy Rational)."""
        from sympy import QQ

        if isinstance(q, Ex):
            return q
        if isinstance(q, float):
            q = Fraction(repr(float(q)))
        if isinstance(q, (int, np.integer)):
            return Ex(self, self.R(int(q)))
        if isinstance(q, Fraction):
            return Ex(self, self.R(QQ(q.numerator, q.denominator)))
        return self.from_sympy(q)

    def _root(self, n: int):
        if n not in self._surd:
            v = self.R.one
            for p, e in _sp().factorint(n).items():
                if p not in self.root:
                    raise NotInField(f"sqrt({p}) is outside Q(sqrt of the weights' primes)")
                v = v * self.root[p] ** e
            self._surd[n] = self.reduce(v)
        return self._surd[n]

    def from_sympy(self, e) -> "Ex":
        sp = _sp()
        from sympy import QQ

        if isinstance(e, Ex):
            return e
        if isinstance(e, (int, float, Fraction, np.integer, np.floating)) and not isinstance(e, bool):
            return self.const(float(e) if isinstance(e, np.floating) else e)
        e = sp.sympify(e)
        R = self.R
        out = R.zero
        for term in sp.Add.make_args(sp.expand(e)):
            if term == 0:
                continue
            c, facs = term.as_coeff_mul()
            if not c.is_Rational:
                raise NotInField(f"{c} is not rational")
            v = R(QQ(int(c.p), int(c.q)))
            for f in facs:
                base, ex = (f.base, f.exp) if f.is_Pow else (f, sp.Integer(1))
                if base.is_Symbol and base.name in self.gen and ex.is_Integer:
                    n = int(ex)
                    if n >= 0:
                        v = v * self.gen[base.name] ** n
                    elif base.name in self.inv:
                        v = v * self.inv[base.name] ** (-n)
                    else:
                        raise NotInField(f"{f}: negative power of {base.name}")
                elif base.is_Integer and base > 0 and ex == sp.Rational(1, 2):
                    v = v * self._root(int(base))
                elif base.is_Integer and base > 0 and ex == sp.Rational(-1, 2):
                    v = v * self._root(int(base)) * R(QQ(1, int(base)))
                else:
                    raise NotInField(f"{f} is not a known square root or symbol")
            out = out + v
        return Ex(self, self.reduce(out))

    def to_sympy(self, x):
        """The element as a SymPy expression (roots as sqrt(p), gens as the instance's symbols)."""
        sp = _sp()
        p = x.p if isinstance(x, Ex) else x
        subs = [sp.sqrt(q) for q in self.primes] + [self.symbols[n] for n in self.gens] + \
               [1 / self.symbols[n] for n in self.inverse]
        if not p:
            return sp.Integer(0)
        return sp.expand(p.as_expr(*subs)) if subs else sp.Integer(int(p))

    def evaluate(self, x, point: dict | None = None, dps: int = 30) -> float:
        """The element's value at ``point`` (gen name -> float), computed with ``dps`` digits."""
        import mpmath

        p = x.p if isinstance(x, Ex) else x
        if not p:
            return 0.0
        point = point or {}
        with mpmath.workdps(dps):
            k, ng = self.k, len(self.gens)
            used = set()
            for m in p.itermonoms():
                used |= {i for i, e in enumerate(m[k:]) if e}
            vals = [mpmath.sqrt(q) for q in self.primes]
            for i, n in enumerate(self.gens):
                if (i in used or (n in self.inverse and k + ng + self.inverse.index(n) - k in used)) \
                        and n not in point:
                    raise NotInField(f"no value for the symbol {n}")
                vals.append(mpmath.mpf(point.get(n, 1)))
            vals += [1 / mpmath.mpf(point.get(n, 1)) for n in self.inverse]
            tot = mpmath.mpf(0)
            for monom, c in p.iterterms():
                t = mpmath.mpf(int(c.numerator)) / int(c.denominator)
                for v, e in zip(vals, monom):
                    if e:
                        t *= v ** e
                tot += t
            return float(tot)

    # ---- signs --------------------------------------------------------------------------------
    def sign(self, x) -> tuple[str, str]:
        """('+', '-', '0' or '?', reason) of x on the current orthant: the rule of symbolic/signs.py
        (every term of one strict sign on the open orthant -> that sign; a zero polynomial -> 0;
        terms of both signs or a coefficient SymPy cannot sign -> '?')."""
        p = x.p if isinstance(x, Ex) else x
        if not p:
            return "0", "zero polynomial"
        key = p
        hit = self._sign_cache.get(key)
        if hit is not None:
            return hit
        k, ng = self.k, len(self.gens)
        groups: dict = {}
        for monom, c in p.iterterms():
            groups.setdefault(monom[k:], []).append((monom[:k], c))
        seen = set()
        out = None
        for gm, terms in groups.items():
            ms = 1
            for i, e in enumerate(gm):
                if not e:
                    continue
                name = self.gens[i] if i < ng else self.inverse[i - ng]
                s = self.orthant.get(name)
                if s is None:
                    out = ("?", f"symbol {name} has no sign assumption")
                    break
                ms *= s ** e
            if out:
                break
            cs = {1 if c > 0 else -1 for _, c in terms}
            if len(cs) == 2:  # a sum of rational multiples of distinct root products: ask SymPy
                sp = _sp()
                val = sum(sp.Rational(int(c.numerator), int(c.denominator)) *
                          sp.sqrt(math.prod(q ** e for q, e in zip(self.primes, rm))) for rm, c in terms)
                if val.is_positive:
                    cs = {1}
                elif val.is_negative:
                    cs = {-1}
                elif val.is_zero:  # pragma: no cover - impossible in the reduced form
                    continue
                else:
                    out = ("?", f"sign of coefficient {val} undecided")
                    break
            seen.add(cs.pop() * ms)
        if out is None:
            if not seen:
                out = ("0", "zero polynomial")
            elif len(seen) == 2:
                out = ("?", "terms of both signs on the orthant")
            else:
                out = ("+", "every term > 0") if seen == {1} else ("-", "every term < 0")
        self._sign_cache[key] = out
        return out

    def decide(self, x, where: str = "") -> str:
        """'+', '-' or '0'; raises UndecidedSign where the analysis cannot decide."""
        s, why = self.sign(x)
        if s == "?":
            raise UndecidedSign(where or "a value", self.to_sympy(x), why)
        return s

    # ---- arrays -------------------------------------------------------------------------------
    def array(self, values) -> np.ndarray:
        """A NumPy object array of elements from numbers, SymPy values or a SymPy matrix."""
        if isinstance(values, np.ndarray) and values.dtype == object and (
                values.size == 0 or isinstance(values.flat[0], Ex)):
            return values
        if hasattr(values, "tolist") and not isinstance(values, np.ndarray):  # a SymPy matrix
            rows, cols = values.shape
            flat = [self.from_sympy(v) for v in values]
            out = np.empty(len(flat), dtype=object)
            out[:] = flat
            return out.reshape(rows, cols) if cols > 1 and rows > 1 else out.reshape(-1)
        arr = np.asarray(values, dtype=object)
        out = np.empty(arr.shape, dtype=object)
        for idx, v in np.ndenumerate(arr):
            out[idx] = self.from_sympy(v)
        return out

    def zeros(self, shape) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        out.fill(self.zero)
        return out

    def to_sympy_matrix(self, arr):
        """A column (1-D) or a matrix (2-D) object array as a SymPy Matrix."""
        sp = _sp()
        a = np.asarray(arr, dtype=object)
        if a.ndim == 1:
            return sp.Matrix([self.to_sympy(v) for v in a])
        return sp.Matrix(a.shape[0], a.shape[1], [self.to_sympy(v) for v in a.reshape(-1)])


class Ex:
    """One element of an :class:`ExactRing` (a reduced rational polynomial in roots and symbols).

    Arithmetic is exact; ``x == 0`` / ``x != 0`` and the order comparisons with 0 are decided on the
    current orthant (a nonzero polynomial that may vanish on part of it raises UndecidedSign), so
    the engine's tests ``zbar != 0``, ``theta_b == 0`` mean "on the whole orthant"."""

    __slots__ = ("F", "p")

    def __init__(self, F: ExactRing, p):
        self.F, self.p = F, p

    def _other(self, o):
        if isinstance(o, np.ndarray):
            return NotImplemented
        if isinstance(o, Ex):
            return o.p
        if isinstance(o, (int, np.integer)) and not isinstance(o, bool):
            return self.F.R(int(o))
        if isinstance(o, (float, np.floating)):
            return self.F.const(float(o)).p
        if isinstance(o, Fraction):
            return self.F.const(o).p
        return self.F.from_sympy(o).p

    def __add__(self, o):
        q = self._other(o)
        return NotImplemented if q is NotImplemented else Ex(self.F, self.p + q)

    __radd__ = __add__

    def __sub__(self, o):
        q = self._other(o)
        return NotImplemented if q is NotImplemented else Ex(self.F, self.p - q)

    def __rsub__(self, o):
        q = self._other(o)
        return NotImplemented if q is NotImplemented else Ex(self.F, q - self.p)

    def __neg__(self):
        return Ex(self.F, -self.p)

    def __pos__(self):
        return self

    def __mul__(self, o):
        q = self._other(o)
        if q is NotImplemented:
            return NotImplemented
        if not q or not self.p:
            return self.F.zero
        return Ex(self.F, self.F.reduce(self.p * q))

    __rmul__ = __mul__

    def __truediv__(self, o):
        q = self._other(o)
        if q is NotImplemented:
            return NotImplemented
        if not q.is_ground:
            raise NotInField("division by a non-constant element")
        c = q.LC
        if not q.is_ground or c == 0:
            raise ZeroDivisionError("division by zero")
        return Ex(self.F, self.p.quo_ground(c))

    def __pow__(self, n: int):
        out = self.F.one
        for _ in range(int(n)):
            out = out * self
        return out

    def is_zero_poly(self) -> bool:
        return not self.p

    def _sign(self) -> str:
        return self.F.decide(self, "a comparison with 0")

    def __eq__(self, o):
        if isinstance(o, Ex):
            return self.p == o.p
        if isinstance(o, (int, float, np.integer, np.floating)) and o == 0:
            return self._sign() == "0"
        return self.p == self._other(o)

    def __ne__(self, o):
        return not self.__eq__(o)

    def __gt__(self, o):
        return (self - o)._sign() == "+"

    def __lt__(self, o):
        return (self - o)._sign() == "-"

    def __ge__(self, o):
        return (self - o)._sign() in "+0"

    def __le__(self, o):
        return (self - o)._sign() in "-0"

    def __bool__(self):
        return self != 0

    def __hash__(self):
        return hash(self.p)

    def __float__(self):
        k = self.F.k
        if any(any(m[k:]) for m in self.p.itermonoms()):
            raise TypeError(f"{self} has free symbols; use ExactRing.evaluate")
        return self.F.evaluate(self)

    def __abs__(self):
        s = self._sign()
        return -self if s == "-" else self

    def __repr__(self):
        return str(self.F.to_sympy(self))

    __str__ = __repr__


class ExactLayers(Layers):
    """The weights of an exact construction in an :class:`ExactRing`, held sparsely (the entries the
    builder produced, wherever they are); the field operations decide every sign exactly."""

    kind = "exact"
    dtype = object

    def __init__(self, mats, F: ExactRing):
        self.F = F
        self.N = len(mats)
        self.D = int(mats[0].rows) if self.N else 0
        self.rows, self.cols, self._nnz = [], [], []
        for M in mats:
            rows: dict = {}
            cols: dict = {}
            for (i, j), v in _nonzero_items(M):
                w = F.from_sympy(v).p
                if not w:
                    continue
                rows.setdefault(i, []).append((j, w))
                cols.setdefault(j, []).append((i, w))
            self.rows.append(sorted(rows.items()))
            self.cols.append(sorted(cols.items()))
            nnz = np.zeros(self.D, dtype=np.int64)
            for i, r in rows.items():
                nnz[i] = len(r)
            self._nnz.append(nnz)

    def _mv(self, table, X):
        F = self.F
        if X.ndim == 2:
            out = np.empty(X.shape, dtype=object)
            for c in range(X.shape[1]):
                out[:, c] = self._mv(table, X[:, c])
            return out
        xs = [x.p if isinstance(x, Ex) else F.from_sympy(x).p for x in X]
        out = np.empty(self.D, dtype=object)
        out.fill(F.zero)
        Rz = F.R.zero
        for i, row in table:
            acc = Rz
            for j, w in row:
                xj = xs[j]
                if xj:
                    acc = acc + w * xj
            if acc:
                out[i] = Ex(F, F.reduce(acc))
        return out

    def apply(self, k, X):
        return self._mv(self.rows[k], np.asarray(X, dtype=object))

    def apply_T(self, k, X):
        return self._mv(self.cols[k], np.asarray(X, dtype=object))

    def abs_apply(self, k, X):  # pragma: no cover - the exact backend has no rounding to bound
        raise NotImplementedError("the exact backend has no rounding: no |W| passes")

    abs_apply_T = abs_apply

    def row_nnz(self, k):
        return self._nnz[k]

    def block(self, k, rows, cols):
        return self.dense(k)[rows, cols]

    def dense(self, k):
        """W_k as a D x D object array of elements."""
        out = self.F.zeros((self.D, self.D))
        for i, row in self.rows[k]:
            for j, w in row:
                out[i, j] = Ex(self.F, w)
        return out

    def to_dense(self):
        return np.stack([self.dense(k) for k in range(self.N)]) if self.N else np.empty((0, 0, 0), dtype=object)

    def __array__(self, dtype=None, copy=None):
        return self.to_dense()

    # ---- the number field --------------------------------------------------------------------
    def relu(self, pre):
        pre = np.asarray(pre, dtype=object)
        out = np.empty(pre.shape, dtype=object)
        for idx, v in np.ndenumerate(pre):
            out[idx] = v if self.F.decide(v, "a ReLU") == "+" else self.F.zero
        return out

    def relu_grad(self, pre, r):
        pre = np.asarray(pre, dtype=object)
        r = self.scalar(r)
        out = np.empty(pre.shape, dtype=object)
        for idx, v in np.ndenumerate(pre):
            s = self.F.decide(v, "a ReLU'")
            out[idx] = self.F.one if s == "+" else (r if s == "0" else self.F.zero)
        return out

    def zeros(self, shape):
        return self.F.zeros(shape)

    def empty(self, shape):
        return self.F.zeros(shape)

    def asarray(self, x):
        return self.F.array(x)

    def abs(self, x):
        return np.vectorize(abs, otypes=[object])(np.asarray(x, dtype=object))

    def scalar(self, c):
        if isinstance(c, np.ndarray) and c.shape == ():
            c = c.item()
        return self.F.const(c) if not isinstance(c, Ex) else c

    def is_zero(self, x):
        return np.vectorize(lambda v: v == 0, otypes=[bool])(np.asarray(x, dtype=object))

    @property
    def nbytes(self) -> int:
        return 0


def _nonzero_items(M):
    """((i, j), value) for the nonzero entries of a SymPy matrix (or a 2-D array)."""
    if hasattr(M, "todok"):
        return list(M.todok().items())
    out = []
    for i in range(M.rows):
        for j in range(M.cols):
            v = M[i, j]
            if v != 0:
                out.append(((i, j), v))
    return out


def primes_of(mats) -> list:
    """The primes under the square roots of the entries of SymPy matrices."""
    sp = _sp()
    primes = set()
    for M in mats:
        for _, e in _nonzero_items(M):
            if e.is_Rational:
                continue
            for p in e.atoms(sp.Pow):
                if p.is_number:
                    if not (p.base.is_Integer and p.base > 0 and abs(p.exp) == sp.Rational(1, 2)):
                        raise NotInField(f"{p} is not the square root of a positive integer")
                    primes |= set(sp.factorint(int(p.base)))
    return sorted(primes)


class _ExactLoss:
    """The run's loss with its gradient taken in SymPy and brought back into the ring: a gradient
    outside it (softmax at a nonzero output, a clip whose branch the orthant does not fix) raises
    UndecidedSign with the reason, like any other sign the analysis cannot decide."""

    def __init__(self, loss, F: ExactRing):
        self.loss, self.F = loss, F

    def __getattr__(self, name):
        return getattr(self.loss, name)

    def grad(self, y, yhat):
        F = self.F
        sp = _sp()
        ys = [F.to_sympy(v) for v in np.asarray(y, dtype=object).reshape(-1)]
        yh = [F.to_sympy(v) for v in np.asarray(yhat, dtype=object).reshape(-1)]
        g = self.loss.grad(sp.Matrix(ys), sp.Matrix(yh))
        try:
            return F.array([sp.simplify(v) if not v.is_polynomial() else v for v in g])
        except (NotInField, TypeError, AttributeError) as exc:
            raise UndecidedSign(f"the gradient of the {self.loss.name} loss", sp.Matrix(list(g)),
                                f"not in Q(sqrt p)[alpha, y]: {exc}") from exc


class ExactConstruction:
    """An exact construction (SymPy, ``build(design, ExactField())``) as the engine executes it: the
    weights as :class:`ExactLayers`, W_g as an object array, theta_b = 0, and phi with the switch
    theta_b == 0 decided on the current orthant. Everything else is the SymPy construction's."""

    def __init__(self, con, F: ExactRing):
        self.sym, self.F = con, F
        self.W = ExactLayers(list(con.W), F)
        self.Wg = F.array(con.Wg).reshape(con.Wg.shape[0], con.Wg.shape[1])
        self.theta_b = F.zero
        self.extras: dict = {}
        self._loss = _ExactLoss(con.loss, F)

    def __getattr__(self, name):
        return getattr(self.sym, name)

    @property
    def loss(self):
        return self._loss

    def phi(self, u, theta_b):
        from ..construction.features import phi_tilde_index

        b, d = self.blocks, self.design
        tb = self.F.scalar(theta_b) if hasattr(self.F, "scalar") else self.F.const(theta_b)
        s = self.F.decide(tb, "the feature switch theta_b == 0")
        out = self.F.zeros(b.D)
        out[phi_tilde_index(u, s == "0", d.J, d.L, b)] = self.F.one
        out[b.bottom] = tb
        return out


def _scalar(F: ExactRing, c):
    return c if isinstance(c, Ex) else F.const(c)


ExactRing.scalar = _scalar


def exact_ring_for(con, symbols=(), inverse=()) -> ExactRing:
    """The ring of an exact construction's weights (its primes) with the given symbol names."""
    return ExactRing(primes_of(list(con.W) + [con.Wg]), symbols, inverse)

"""The claimed sides of the claims, written apart from :mod:`universality.construction`.

A claim compares what the network executed (:mod:`universality.execution`) with what the paper or the
spec says it should be. The second side comes from here, and this package never imports the builder,
so a bug in the builder (a wrong bin, a permuted code table, a misplaced weight) cannot be agreed with
by the checker:

* :mod:`.bins`: the cells of x and x* in exact rational arithmetic (``fractions``);
* :mod:`.codes`: the code table c(j, l) from the spec's formulas (one-hot; moment curve);
* :mod:`.design`: the spec's chosen A_i, e_bar(y), e_check(y) and the switched feature map;
* :mod:`.telescoping`: A_i, B_i, prod wcheck_i and the kernels k_i(a, b) recovered from *given*
  weights by the paper's telescoping products (App. A.3), for any construction, built here or not;
* :mod:`.lossdiff`: the losses' formulas written again from their definitions and differentiated by
  forward-mode AD (float64, or exact rationals at yhat = 0);
* :mod:`.formulas`: v(x, x*, y), eq. (3), theta_b' = -alpha r^N (prod wcheck_i) e_check(y), the
  error at z from :mod:`.lossdiff`'s derivative.

What may still be shared with the builder is listed in docs/claims.md: the index arithmetic of
:class:`universality.blocks.Blocks` and the loss's closed-form label maps (``label_code``,
``e_check``), which the builder does not use (it builds W_g from ``loss.head``).
"""
from . import bins, codes, design, formulas, lossdiff, telescoping  # noqa: F401

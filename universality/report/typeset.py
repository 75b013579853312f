"""Mathematics in the reports: one LaTeX source, three renderings.

* HTML: MathML from `latex2mathml <https://pypi.org/project/latex2mathml/>`_ (a real LaTeX parser;
  Chromium, Firefox and Safari render MathML natively, so the report stays one offline file with no
  script and no font download). It replaced a hand-written matplotlib-mathtext path that drew
  ``\\not\\Rightarrow`` as ``\\Rightarrow`` and dropped ``\\check``.
* LaTeX/PDF: the source itself, set by pdflatex.
* Terminal and graph labels: :func:`plain`, a small LaTeX -> Unicode text rendering.

Text fields mix prose and mathematics as ``"prose $math$ prose"`` (the blueprint's titles and
explanations). Strings computed by the claims and findings are prose with ASCII formulas
("theta_b' = 0", "zbar*"); :func:`prose` turns the formulas it recognises into ``$...$`` so that
they are typeset too.
"""
from __future__ import annotations

import functools
import re
from html import escape as _html_escape

_MATH = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$", re.S)


def split(text: str) -> list[tuple[bool, str]]:
    """``"a $x$ b"`` -> [(False, "a "), (True, "x"), (False, " b")]."""
    out, pos = [], 0
    for m in _MATH.finditer(text):
        if m.start() > pos:
            out.append((False, text[pos:m.start()]))
        out.append((True, m.group(1)))
        pos = m.end()
    if pos < len(text):
        out.append((False, text[pos:]))
    return out


@functools.lru_cache(maxsize=4096)
def mathml(tex: str, display: bool = False) -> str:
    """MathML for the math-mode LaTeX ``tex`` (latex2mathml)."""
    from latex2mathml.converter import convert

    try:
        return convert(tex, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - outside the converter's LaTeX: show the source, never crash
        return '<code class="tex">' + _html_escape(tex, quote=False) + "</code>"


def html(text: str, display: bool = False) -> str:
    """Mixed text -> HTML: prose escaped, ``$...$`` as MathML. (A string that is all math with
    ``display`` set becomes display math.)"""
    parts = split(str(text))
    if display and len(parts) == 1 and parts[0][0]:
        return mathml(parts[0][1], True)
    return "".join(mathml(s) if m else _html_escape(s, quote=False) for m, s in parts)


def tex(text: str) -> str:
    """Mixed text -> LaTeX: prose escaped for text mode, ``$...$`` passed through."""
    from .latex import escape

    return "".join(f"${s}$" if m else escape(s) for m, s in split(str(text)))


# ---- LaTeX -> plain Unicode ---------------------------------------------------------------------
_SYMBOLS = {
    r"\alpha": "α", r"\beta": "β", r"\gamma": "γ", r"\delta": "δ", r"\Delta": "Δ", r"\varepsilon": "ε",
    r"\epsilon": "ε", r"\theta": "θ", r"\lambda": "λ", r"\Lambda": "Λ", r"\mu": "μ", r"\pi": "π",
    r"\rho": "ρ", r"\sigma": "σ", r"\Sigma": "Σ", r"\phi": "φ", r"\varphi": "φ", r"\ell": "ℓ",
    r"\nabla": "∇", r"\partial": "∂", r"\sum": "Σ", r"\prod": "∏", r"\infty": "∞",
    r"\not\Rightarrow": "⇏", r"\Rightarrow": "⇒", r"\Leftarrow": "⇐", r"\iff": "⇔", r"\to": "→",
    r"\mapsto": "↦", r"\downarrow": "↓", r"\uparrow": "↑", r"\neq": "≠", r"\ne": "≠",
    r"\geq": "≥", r"\leq": "≤", r"\ge": "≥", r"\le": "≤", r"\succ": "≻", r"\approx": "≈",
    r"\in": "∈", r"\otimes": "⊗", r"\cdot": "·", r"\times": "×", r"\cdots": "⋯", r"\ldots": "…",
    r"\dots": "…", r"\star": "★", r"\ker": "ker", r"\log": "log", r"\max": "max", r"\min": "min",
    r"\colon": ":", r"\|": "‖", r"\{": "{", r"\}": "}", r"\quad": "  ", r"\qquad": "   ",
    r"\,": " ", r"\;": " ", r"\:": " ", r"\!": "", r"\ ": " ", r"\left": "", r"\right": "",
    r"\mathbb{R}": "ℝ", r"\mathbb{1}": "𝟙", r"\mathbf{1}": "𝟏",
}
_ACCENTS = {r"\bar": "\u0304", r"\check": "\u030c", r"\tilde": "\u0303", r"\hat": "\u0302"}
_SUP = dict(zip("0123456789+-=()niTt", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱᵀᵗ"))
_SUB = dict(zip("0123456789+-=()aeijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"))


def _group(s: str, i: int) -> tuple[str, int]:
    """The argument starting at s[i]: {...} or one command or one character."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] == "{":
        depth = 0
        for j in range(i, len(s)):
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            if depth == 0:
                return s[i + 1:j], j + 1
        return s[i + 1:], len(s)
    if s[i] == "\\":
        m = re.match(r"\\[A-Za-z]+|\\.", s[i:])
        return m.group(0), i + len(m.group(0))
    return s[i], i + 1


def _script(body: str, table: dict, mark: str) -> str:
    text = plain_math(body)
    if text == "★" and mark == "^":
        return "★"
    if text and all(ch in table for ch in text):
        return "".join(table[ch] for ch in text)
    return mark + (text if len(text) == 1 else "(" + text + ")")


def plain_math(s: str) -> str:
    """Math-mode LaTeX -> readable Unicode text (for the terminal and graph labels)."""
    out, i = [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            for cmd in (r"\not\Rightarrow", r"\mathbb{R}", r"\mathbb{1}", r"\mathbf{1}"):
                if s.startswith(cmd, i):
                    out.append(_SYMBOLS[cmd])
                    i += len(cmd)
                    break
            else:
                m = re.match(r"\\[A-Za-z]+|\\.", s[i:])
                cmd = m.group(0)
                i += len(cmd)
                if cmd in _ACCENTS:
                    arg, i = _group(s, i)
                    base = plain_math(arg)
                    out.append(base[:1] + _ACCENTS[cmd] + base[1:] if base else "")
                elif cmd in (r"\mathrm", r"\text", r"\mathbf", r"\mathbb", r"\operatorname", r"\mathit",
                             r"\boldsymbol"):
                    arg, i = _group(s, i)
                    out.append(plain_math(arg) if cmd != r"\text" else arg)
                elif cmd == r"\frac":
                    a, i = _group(s, i)
                    b, i = _group(s, i)
                    a, b = plain_math(a), plain_math(b)
                    out.append(f"{a}/{b}" if len(a) <= 1 and len(b) <= 2 else f"({a})/({b})")
                elif cmd in (r"\begin", r"\end"):
                    env, i = _group(s, i)
                    out.append({"pmatrix": "(" if cmd == r"\begin" else ")"}.get(env, ""))
                elif cmd == r"\\":
                    out.append("; ")
                else:
                    out.append(_SYMBOLS.get(cmd, cmd[1:]))
        elif ch in "^_":
            arg, i = _group(s, i + 1)
            out.append(_script(arg, _SUP if ch == "^" else _SUB, ch))
        elif ch in "{}":
            i += 1
        elif ch == "&":
            out.append(", ")
            i += 1
        else:
            out.append(ch)
            i += 1
    return re.sub(r"[ ]{2,}", " ", "".join(out)).strip() if len(out) else ""


def plain(text: str) -> str:
    """Mixed text -> plain Unicode text: ``"$\\bar z^\\star \\neq 0$ after"`` -> ``"z̄★ ≠ 0 after"``."""
    return "".join(plain_math(s) if m else s for m, s in split(str(text)))


# ---- ASCII formulas in computed prose -> $...$ --------------------------------------------------
# (pattern, LaTeX); tried in this order at each position, longest first within a family
_TOKENS: list[tuple[str, str]] = [
    (r"\bN = J\*L \+ 2\b", r"N = JL + 2"), (r"\bN = J\*L\b", r"N = JL"), (r"\bJ\*L\b", r"JL"),
    (r"\bsum\(y\)", r"\sum y"),
    (r"phi~\*", r"\tilde\phi^\star"), (r"\bphi\*", r"\phi^\star"), (r"R~\^T", r"\tilde R^T"),
    (r"\bL-\^T", r"\bar L^T"), (r"\bphi~\^T", r"\tilde\phi^T"), (r"\)\^T", r")^T"),
    (r"\bsum_i\b", r"\sum_i"), (r"\bprod\(", r"\prod("), (r"\]_mid\b", r"]_{mid}"),
    (r"max\|zbar\*\|", r"\max|\bar z^\star|"),
    (r"max\|-alpha v\|", r"\max|-\alpha v|"),
    (r"max\|grad\|", r"\max|\nabla|"),
    (r"max\|theta'_a - theta'_b\|", r"\max|\theta'_a - \theta'_b|"),
    (r"max\|prod W' - first order\|", r"\max|\prod W' - \text{first order}|"),
    (r"max \|grad W_i - formula\|", r"\max|\nabla_{W_i}\ell - \text{formula}|"),
    (r"max\(-alpha v, 0\)", r"\max(-\alpha v, 0)"),
    (r"max\(eq\. \(3\), 0\)", r"\max(\text{eq. (3)}, 0)"),
    (r"zbar\*", r"\bar z^\star"), (r"zbar_star", r"\bar z^\star"), (r"\bzbar\b", r"\bar z"),
    (r"theta'_a", r"\theta'_a"), (r"theta'_b", r"\theta'_b"), (r"theta_b'", r"\theta_b'"),
    (r"theta_b", r"\theta_b"), (r"theta_h", r"\theta_h"), (r"theta_ft", r"\theta_{ft}"),
    (r"theta_g'", r"\theta_g'"), (r"theta_g", r"\theta_g"), (r"theta'", r"\theta'"),
    (r"\btheta\b", r"\theta"),
    (r"e_check\(sum_k y_k\)", r"\check e\left(\sum_k y_k\right)"), (r"e_check\(([^()]*)\)", r"\check e(\1)"),
    (r"e_check", r"\check e"), (r"e_bar\(([^()]*)\)", r"\bar e(\1)"), (r"e_bar", r"\bar e"),
    (r"w_check", r"\check w"), (r"prod w_check", r"\prod \check w"),
    (r"-alpha\s?\*\s?y", r"-\alpha y"), (r"alpha\s?\*\s?y", r"\alpha y"), (r"-alpha v_\+", r"-\alpha v_+"),
    (r"alpha v_\+", r"\alpha v_+"), (r"-alpha v", r"-\alpha v"), (r"alpha v", r"\alpha v"),
    (r"O\(alpha\^2\)", r"O(\alpha^2)"), (r"-alpha", r"-\alpha"), (r"\balpha\b", r"\alpha"),
    (r"ReLU'\(0\)", r"\mathrm{ReLU}'(0)"), (r"\brelu_grad_at_zero\b", r"\mathrm{ReLU}'(0)"), (r"\byhat\b", r"\hat y"), (r"phi~", r"\tilde\phi"),
    (r"\bphi\b", r"\phi"), (r"\bx_star\b", r"x^\star"), (r"\bx\*", r"x^\star"), (r"\bf_target\b", r"f_{target}"),
    (r"\bf_out\b", r"f_{out}"), (r"\bg_pre\b", r"g_{pre}"), (r"\bh_post\b", r"h_{post}"),
    (r"W~_([A-Za-z0-9]+)", r"\tilde W_{\1}"), (r"Wtilde_([A-Za-z0-9]+)", r"\tilde W_{\1}"),
    (r"W-_([A-Za-z0-9]+)", r"\bar W_{\1}"), (r"Wbar_([A-Za-z0-9]+)", r"\bar W_{\1}"),
    (r"\bin Dg\b", r"\in \mathrm{Dg}"), (r"\bin U\b", r"\in U"), (r"\bL-", r"\bar L"),
    (r"\bW~", r"\tilde W"),
    (r"\bDelta_\{([^}]*)\}", r"\Delta_{\1}"), (r"\bDelta_([A-Za-z0-9]+)", r"\Delta_{\1}"),
    (r"\bDelta\b", r"\Delta"), (r"\bR~", r"\tilde R"), (r"\bL- L-\^T", r"\bar L \bar L^T"),
    (r"prod_\{([^}]*)\}", r"\prod_{\1}"), (r"sum_\{([^}]*)\}", r"\sum_{\1}"), (r"\bsum_k\b", r"\sum_k"),
    (r"\bprod W'", r"\prod W'"), (r"\bprod W\b", r"\prod W"), (r"\bgrad W_i\b", r"\nabla_{W_i}\ell"),
    (r"\bW'", r"W'"),
    # identifiers with sub/superscripts: B_2^-T, a_i, b_{i-1}^T, c_{i-2}, r^i, G_i^T, A_i^(1/2)
    (r"\b([A-Za-z])((?:_\{[^}]*\}|_[A-Za-z0-9+]+|_\([^)]*\))?)((?:\^\{[^}]*\}|\^-?[A-Za-z0-9]+|\^\([^)]*\))?)"
     r"(?<=[}A-Za-z0-9)+])(?=\W|$)", None),
    (r"!=", r"\neq"), (r">=", r"\geq"), (r"<=", r"\leq"), (r"=>", r"\Rightarrow"),
    # SymPy's str() of a residual: -145*y0/128, 3*y1, y0
    (r"(-?\d+)\*y(\d+)/(\d+)", r"\1"), (r"(-?\d+)\*y(\d+)", r"\1"), (r"\by(\d+)\b", r"\1"),
    (r"(?<= )\(x\)(?= )", r"\otimes"),
]
_TOKEN_RE = [(re.compile(p), t) for p, t in _TOKENS]


def _sympy_term(m: re.Match) -> str:
    """-145*y0/128 -> -\\frac{145}{128} y_0; 3*y1 -> 3 y_1; y0 -> y_0."""
    g = m.groups()
    if len(g) == 3:
        num, var, den = g
        sign = "-" if num.startswith("-") else ""
        return rf"{sign}\frac{{{num.lstrip('-')}}}{{{den}}}\, y_{{{var}}}"
    if len(g) == 2:
        return rf"{g[0]}\, y_{{{g[1]}}}"
    return rf"y_{{{g[0]}}}"


def _script_tex(part: str) -> str:
    """'_{i-1}' / '_i' / '_(i+1)' / '^-T' / '^(1/2)' -> '_{i-1}', '_i', '_{i+1}', '^{-T}', '^{1/2}'."""
    if not part:
        return ""
    mark, body = part[0], part[1:]
    if body.startswith("{") or body.startswith("("):
        body = body[1:-1]
    return f"{mark}{{{body}}}" if len(body) > 1 else f"{mark}{body}"


def _ident(m: re.Match) -> str | None:
    base, sub, sup = m.group(1), m.group(2), m.group(3)
    if not sub and not sup:
        return None
    return base + _script_tex(sub) + _script_tex(sup)


def prose(text) -> str:
    """Computed prose with ASCII formulas -> mixed text with ``$...$`` (already-mixed text and text
    without formulas come back unchanged, apart from the formulas it recognises)."""
    text = str(text)
    out = []
    for is_math, s in split(text):
        out.append(f"${s}$" if is_math else _prose_part(s))
    return _merge("".join(out))


def _prose_part(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        for rx, repl in _TOKEN_RE:
            m = rx.match(s, i)
            if not m or m.end() == i:
                continue
            if repl is None:
                if i > 0 and (s[i - 1].isalnum() or s[i - 1] == "_"):
                    continue
                tex_ = _ident(m)
                if tex_ is None:
                    continue
            else:
                if i > 0 and s[i - 1].isalnum() and s[i].isalnum():
                    continue  # inside a word
                tex_ = _sympy_term(m) if rx.pattern.startswith(("(-?", r"\by(")) else (
                    repl.replace(r"\1", m.group(1)) if m.groups() else repl)
            out.append(f"${tex_}$")
            i = m.end()
            break
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


_JOIN = re.compile(r"\$([^$]+)\$(\s*(?:[-=+<>*/,]|\\?[()])?\s*)\$([^$]+)\$")
_ABSORB = re.compile(r"\$([^$]+)\$( ?[-=<>+] ?)(-?[0-9][0-9.e+-]*|[A-Za-z])(?![A-Za-z0-9_])")
_ABSORB_L = re.compile(r"(?<![A-Za-z0-9_.])([0-9][0-9.]*|[A-Za-z]) ?([-=<>+]) ?\$([^$]+)\$")


def _merge(s: str) -> str:
    """Join neighbouring formulas ("$a$ = $b$" -> "$a = b$") and pull a bare number or one-letter
    operand next to an operator into its formula ("$\\theta_b'$ = 0" -> "$\\theta_b' = 0$")."""
    def sep(text: str) -> str:
        return text.replace(",", r",\ ").replace("*", r" \cdot ")

    for _ in range(8):
        t = _JOIN.sub(lambda m: f"${m.group(1)}{sep(m.group(2))}{m.group(3)}$", s)
        t = _ABSORB.sub(lambda m: f"${m.group(1)}{m.group(2)}{m.group(3)}$", t)
        t = _ABSORB_L.sub(lambda m: f"${m.group(1)} {m.group(2)} {m.group(3)}$", t)
        if t == s:
            break
        s = t
    # a bare * left inside a formula is a product
    return re.sub(r"\$([^$]+)\$", lambda m: "$" + re.sub(r"(?<!\\)\*", r" \\cdot ", m.group(1)) + "$", s)


# ---- keys of computed records -------------------------------------------------------------------
_KEYS = {
    "x": "$x$", "x_star": "$x^\\star$", "y": "$y$", "alpha": "$\\alpha$", "u": "$u$", "cell": "cell",
    "theta_b_post": "$\\theta_b'$", "max_abs_zbar_star": "$\\max|\\bar z^\\star|$",
    "max_abs_minus_alpha_v": "$\\max|-\\alpha v|$", "max_abs_grad_middle_bottom_rows":
    "$\\max|\\nabla|$ on the middle and bottom rows", "max_abs_gradient": "$\\max|\\nabla|$",
    "min_eigenvalue_M": "smallest eigenvalue of $M$", "min_entry_Mu": "smallest entry of $Mu$",
    "negative_entry_index": "index of the negative entry", "matrix": "matrix",
    "M_entries": "$M$", "u_vector": "$u \\geq 0$", "Mu_vector": "$Mu$ (a negative entry)",
    "slides_B00_min_eigenvalue": "smallest eigenvalue of the slides' $B_{00}$",
    "construction_B_i_sym_part_min_eigenvalue": "smallest eigenvalue of the symmetric part of the $B_i$",
    "residual_vs_minus_alpha_v": "residual against $-\\alpha v$", "zbar_star": "$\\bar z^\\star$",
    "zbar_star_difference": "difference of the $\\bar z^\\star$", "theta_b_gradient": "gradient of $\\theta_b$",
    "e_check_of_sum": "$\\check e$ of the sum", "max_abs_theta_post_difference": "$\\max|\\theta'_a - \\theta'_b|$",
    "decoded_y": "decoded $y$", "decoded_cell": "decoded cell", "branch_after": "branch after the step",
    "largest_weight_change": "largest weight change", "with_N_plus_2": "with $N + 2$ layers",
    "linear_product_vs_formula": "linear product against the formula",
    "relu_network_vs_formula": "ReLU network against the formula",
    "sum_of_gradients_at_0_exact": "sum of the gradients at $0$ (exact)",
    "sum_of_gradients_at_0_executed": "sum of the gradients at $0$ (executed)",
    "unbalanced_task_theta_b_post": "unbalanced task: $\\theta_b'$",
    "signed_variant_decodes_clipped_label": "signed variant decodes the clipped label",
    "other_bottom_form_times_sum": "another bottom head times the sum",
}


def key(name) -> str:
    """A record's key (snake_case) as a label in mixed text."""
    name = str(name)
    if name in _KEYS:
        return _KEYS[name]
    m = re.fullmatch(r"with_r_(.+)", name)
    if m:
        return f"with $r = {m.group(1)}$"
    return prose(name.replace("_", " ")) if re.fullmatch(r"[a-z0-9_]+", name) else prose(name)


_WORDS = re.compile(r"[A-Za-z][A-Za-z-]*[A-Za-z](?:[ ,]+[A-Za-z][A-Za-z-]*[A-Za-z])*|\d+-[A-Za-z]+")


def formula(text: str) -> str:
    """A formula written in ASCII (a schematic proof step: "X, Y in Dg  =>  X Y in Dg") as one
    math-mode LaTeX string: the recognised tokens typeset, words as \\text, wide gaps as \\quad."""
    out = []
    for is_math, t in split(prose(text)):
        if is_math:
            out.append(t)
            continue
        t = re.sub(r" {2,}", " \x00 ", t)
        pos, buf = 0, []
        for m in _WORDS.finditer(t):
            buf.append(t[pos:m.start()])
            buf.append(r"\text{ " + m.group(0) + " }")
            pos = m.end()
        buf.append(t[pos:])
        piece = "".join(buf).replace("\x00", r"\quad")
        out.append(piece.replace("%", r"\%").replace("#", r"\#").replace("&", r"\&"))
    return " ".join(out)

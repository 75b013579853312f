"""LaTeX statements as pre-rendered inline SVG (matplotlib's mathtext): math without a network or TeX.

Glyphs are emitted as paths, so no font is needed to display them, and each glyph is defined once
per document: :class:`MathSheet` collects the glyph outlines of every formula of a report and the
formulas refer to them with <use> (as matplotlib's own SVG backend does within one figure). One
mathtext parse per formula, no figure drawing.
"""
from __future__ import annotations

from html import escape

FONT_SIZE = 14  # points
FONTSET = "cm"


def _fmt(x: float) -> str:
    s = f"{float(x):.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _path_d(vertices, codes) -> str:
    """SVG path data from matplotlib path vertices/codes (MOVETO 1, LINETO 2, CURVE3 3, CURVE4 4,
    CLOSEPOLY 79)."""
    out = []
    i, n = 0, len(codes)
    while i < n:
        c = int(codes[i])
        if c == 1:
            out.append(f"M{_fmt(vertices[i][0])} {_fmt(vertices[i][1])}")
            i += 1
        elif c == 2:
            out.append(f"L{_fmt(vertices[i][0])} {_fmt(vertices[i][1])}")
            i += 1
        elif c == 3:
            (x1, y1), (x2, y2) = vertices[i], vertices[i + 1]
            out.append(f"Q{_fmt(x1)} {_fmt(y1)} {_fmt(x2)} {_fmt(y2)}")
            i += 2
        elif c == 4:
            (x1, y1), (x2, y2), (x3, y3) = vertices[i], vertices[i + 1], vertices[i + 2]
            out.append(f"C{_fmt(x1)} {_fmt(y1)} {_fmt(x2)} {_fmt(y2)} {_fmt(x3)} {_fmt(y3)}")
            i += 3
        elif c == 79:
            out.append("Z")
            i += 1
        else:  # STOP or unknown
            i += 1
    return "".join(out)


class MathSheet:
    """Formulas for one HTML document; glyph outlines are shared and emitted once by :meth:`defs`."""

    def __init__(self) -> None:
        from matplotlib.textpath import TextToPath

        self._t2p = TextToPath()
        self._glyph_map: dict = {}
        self.glyphs: dict[str, str] = {}
        self._cache: dict[str, str] = {}

    def _prop(self):
        from matplotlib.font_manager import FontProperties

        return FontProperties(size=self._t2p.FONT_SCALE)

    def svg(self, tex: str) -> str:
        """An inline <svg> for the math-mode LaTeX ``tex`` (mathtext subset)."""
        if tex in self._cache:
            return self._cache[tex]
        from matplotlib import rc_context

        s = f"${tex}$"
        with rc_context({"mathtext.fontset": FONTSET}):
            prop = self._prop()
            width, height, depth, _, _ = self._t2p.mathtext_parser.parse(s, self._t2p.DPI, prop)
            info, new, rects = self._t2p.get_glyphs_mathtext(prop, s, glyph_map=self._glyph_map,
                                                            return_new_glyphs_only=True)
        for gid, (verts, codes) in new.items():
            self._glyph_map[gid] = (verts, codes)
            self.glyphs[gid] = f'<path id="g-{_safe(gid)}" d="{_path_d(verts * 64, codes)}" transform="scale(0.015625)"/>'
        k = FONT_SIZE / self._t2p.FONT_SCALE
        pad = 1.0
        W, H = width * k + 2 * pad, height * k + 2 * pad
        body = []
        for gid, x, y, scale in info:
            sc = "" if float(scale) == 1.0 else f" scale({_fmt(scale)})"
            body.append(f'<use xlink:href="#g-{_safe(gid)}" transform="translate({_fmt(x)} {_fmt(y)}){sc}"/>')
        for verts, codes in rects:
            body.append(f'<path d="{_path_d(verts, codes)}"/>')
        label = escape(tex, quote=True)
        svg = (f'<svg class="math" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg" '
               f'xmlns:xlink="http://www.w3.org/1999/xlink" width="{_fmt(W)}pt" height="{_fmt(H)}pt" '
               f'viewBox="0 0 {_fmt(W)} {_fmt(H)}" style="vertical-align: {_fmt(-(depth * k + pad))}pt">'
               f"<title>{escape(tex)}</title>"
               f'<g transform="translate({_fmt(pad)} {_fmt(pad + (height - depth) * k)}) '
               f'scale({_fmt(k)} {_fmt(-k)})">{"".join(body)}</g></svg>')
        self._cache[tex] = svg
        return svg

    def defs(self) -> str:
        """The shared glyphs, to be placed once in the document before any formula."""
        body = "".join(self.glyphs[k] for k in sorted(self.glyphs))
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0" aria-hidden="true" '
                f'style="position:absolute;width:0;height:0;overflow:hidden"><defs>{body}</defs></svg>')


def _safe(gid: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in gid)


def render_svg(tex: str) -> str:
    """A standalone <svg> for one formula (its glyph definitions included)."""
    sheet = MathSheet()
    svg = sheet.svg(tex)
    defs = "<defs>" + "".join(sheet.glyphs[k] for k in sorted(sheet.glyphs)) + "</defs>"
    return svg.replace("</title>", "</title>" + defs, 1)

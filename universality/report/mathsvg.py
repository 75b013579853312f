"""LaTeX statements as pre-rendered inline SVG (matplotlib mathtext): math without a network or TeX.

Glyphs are emitted as paths (svg.fonttype = path), so no font is needed to display them. Every
glyph is defined once per document (:class:`MathSheet` collects the <defs> of all statements and
the formulas refer to them with <use>), which keeps a report with dozens of formulas small.
"""
from __future__ import annotations

import io
import re
from functools import lru_cache
from html import escape

FONT_SIZE = 14
_DEFS = re.compile(r"<defs>(.*?)</defs>", re.S)
_GLYPH = re.compile(r'<path id="([^"]+)"\s+d="([^"]*)"\s*(?:transform="([^"]*)")?\s*/>', re.S)
_ID_ATTR = re.compile(r'\s+id="[^"]*"')
_HEAD = re.compile(r"^.*?(<svg\b)", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_BACKGROUND = re.compile(r'<g[^>]*>\s*<path d="[^"]*"\s+style="fill: #ffffff"/>\s*</g>', re.S)


def _squeeze(d: str) -> str:
    return re.sub(r"\s+", " ", d).strip()


@lru_cache(maxsize=512)
def _raw_svg(tex: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import rc_context
    from matplotlib.mathtext import math_to_image
    from matplotlib.font_manager import FontProperties

    buf = io.BytesIO()
    with rc_context({"svg.fonttype": "path", "svg.hashsalt": "universality", "mathtext.fontset": "cm",
                     "svg.image_inline": True}):
        math_to_image(f"${tex}$", buf, prop=FontProperties(size=FONT_SIZE), format="svg")
    return buf.getvalue().decode("utf-8")


def render_svg(tex: str) -> str:
    """One standalone inline <svg> (its own glyph definitions) for the math-mode LaTeX ``tex``."""
    svg = _HEAD.sub(r"\1", _raw_svg(tex), count=1)
    return _strip_metadata(svg)


def _strip_metadata(svg: str) -> str:
    return re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)


class MathSheet:
    """Collects formulas for one HTML document; glyph definitions are shared and emitted once."""

    def __init__(self) -> None:
        self.glyphs: dict[str, str] = {}
        self._cache: dict[str, str] = {}

    def svg(self, tex: str) -> str:
        if tex in self._cache:
            return self._cache[tex]
        svg = render_svg(tex)

        def take(m: re.Match) -> str:
            for gid, d, transform in _GLYPH.findall(m.group(1)):
                t = f' transform="{transform}"' if transform else ""
                self.glyphs.setdefault(gid, f'<path id="{gid}" d="{_squeeze(d)}"{t}/>')
            leftover = _GLYPH.sub("", m.group(1)).strip()
            return f"<defs>{leftover}</defs>" if leftover else ""

        svg = _DEFS.sub(take, svg)
        svg = _COMMENT.sub("", svg)
        svg = _BACKGROUND.sub("", svg, count=1)
        # the glyph ids now live in the shared sheet; every other id would repeat across formulas
        svg = _ID_ATTR.sub("", svg)
        svg = re.sub(r">\s+<", "><", svg)
        label = escape(tex, quote=True)
        svg = svg.replace("<svg ", f'<svg class="math" role="img" aria-label="{label}" ', 1)
        svg = re.sub(r"(<svg\b[^>]*>)", lambda mm: mm.group(1) + f"<title>{escape(tex)}</title>", svg,
                     count=1)
        self._cache[tex] = svg
        return svg

    def defs(self) -> str:
        """The shared glyphs, to be placed once in the document before any formula."""
        body = "".join(self.glyphs[k] for k in sorted(self.glyphs))
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0" aria-hidden="true" '
                f'style="position:absolute;width:0;height:0;overflow:hidden"><defs>{body}</defs></svg>')

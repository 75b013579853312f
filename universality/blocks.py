"""Named basis directions of the width-D layers: the only place that does index arithmetic.

Every layer has three channels (paper eq. (2)): *top* (tilde, size J^dx + L^dx: first the x-cells,
then the x*-cells), *middle* (bar, m code channels, each holding ``s`` signed copies of the dy label
components) and *bottom* (check, size 1). Other modules ask this object for slices and indices
by name, as DeepMind's tracr names every basis direction.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Blocks:
    cells_x: int  # J^dx
    cells_star: int  # L^dx
    m: int  # code channels (layers 2..N-1)
    s: int  # signed copies: 2 = [y; -y], 1 = [y]
    dy: int

    # ---- sizes ---------------------------------------------------------------------------
    @property
    def dt(self) -> int:
        return self.cells_x + self.cells_star

    @property
    def dm(self) -> int:
        return self.m * self.s * self.dy

    @property
    def D(self) -> int:
        return self.dt + self.dm + 1

    # ---- slices of a width-D vector ------------------------------------------------------
    @property
    def top(self) -> slice:
        return slice(0, self.dt)

    @property
    def top_x(self) -> slice:
        """The slots the training input x is written into (theta_b = 0)."""
        return slice(0, self.cells_x)

    @property
    def top_star(self) -> slice:
        """The slots the test input x* is written into (theta_b != 0)."""
        return slice(self.cells_x, self.dt)

    @property
    def mid(self) -> slice:
        return slice(self.dt, self.dt + self.dm)

    @property
    def bottom(self) -> int:
        return self.D - 1

    # ---- inside the middle block (indices relative to the middle block) --------------------
    def mid_local(self, channel: int, sign: int, component: int) -> int:
        """Offset of (channel, sign copy, label component) inside the middle block."""
        if not (0 <= channel < self.m and 0 <= sign < self.s and 0 <= component < self.dy):
            raise IndexError((channel, sign, component))
        return (channel * self.s + sign) * self.dy + component

    def channel_local(self, channel: int) -> slice:
        """The s*dy middle-block offsets of one code channel."""
        w = self.s * self.dy
        return slice(channel * w, (channel + 1) * w)

    def sign_of_local(self, offset: int) -> int:
        return (offset // self.dy) % self.s

    def channel_of_local(self, offset: int) -> int:
        return offset // (self.s * self.dy)

    # ---- names ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        """A human name for each of the D basis directions, in order."""
        out = [f"top.x[{j}]" for j in range(self.cells_x)]
        out += [f"top.star[{l}]" for l in range(self.cells_star)]
        for c in range(self.m):
            for sgn in range(self.s):
                for d in range(self.dy):
                    tag = "+" if sgn == 0 else "-"
                    out.append(f"mid[c{c},{tag},y{d}]")
        out.append("bottom")
        return out

    def ranges(self) -> dict[str, list[int]]:
        """Half-open [start, stop) index ranges of the three blocks (for export)."""
        return {
            "top": [0, self.dt],
            "top_x": [0, self.cells_x],
            "top_star": [self.cells_x, self.dt],
            "middle": [self.dt, self.dt + self.dm],
            "bottom": [self.D - 1, self.D],
        }

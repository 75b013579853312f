"""The paper's argument as data: the blueprint (universality/data/blueprint.toml).

One entry per definition, equation, lemma, theorem, condition, proof step and known gap, each with a
LaTeX statement, the paper reference, ``uses`` edges to other entries and the checker (a claim or a
finding id) that verifies it. The claim and finding registries (claims/base.py) take their titles,
statements and paper references from here, and the reports draw the dependency graph from it.

The human-facing copy is proofs/blueprint.toml at the repository root; the packaged copy (read here,
so that a non-editable ``pip install .`` works) must be byte-identical (tests/test_blueprint.py).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

KINDS = ("definition", "equation", "lemma", "theorem", "condition", "step", "gap", "experiment")
CHECKER_KINDS = ("claim", "finding")

_ID = re.compile(r"^[a-z]+:[A-Za-z0-9.\-]+$")
_CHECKER = re.compile(r"^(claim|finding):[a-z0-9][a-z0-9\-]*$")
_FIELDS = {"id", "kind", "title", "statement", "paper_ref", "uses", "checker", "explain"}


class BlueprintError(ValueError):
    """The blueprint file is malformed. One line naming the entry."""


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str
    title: str
    statement: str  # LaTeX, math mode
    paper_ref: str
    uses: tuple[str, ...] = ()
    checker: str | None = None  # "claim:<id>" / "finding:<id>" / None
    explain: str = ""

    @property
    def checker_kind(self) -> str | None:
        return self.checker.split(":", 1)[0] if self.checker else None

    @property
    def checker_id(self) -> str | None:
        return self.checker.split(":", 1)[1] if self.checker else None

    @property
    def anchor(self) -> str:
        """An HTML/LaTeX-safe label for this entry."""
        return "bp-" + re.sub(r"[^A-Za-z0-9]+", "-", self.id)


@dataclass(frozen=True)
class Blueprint:
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {e.id: e for e in self.entries})
        object.__setattr__(self, "_by_checker", {e.checker: e for e in self.entries if e.checker})

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __contains__(self, id: str) -> bool:
        return id in self._by_id

    def get(self, id: str) -> Entry:
        return self._by_id[id]

    def for_checker(self, kind: str, id: str) -> Entry | None:
        """The entry verified by claim ``id`` (kind "claim") or finding ``id`` (kind "finding")."""
        return self._by_checker.get(f"{kind}:{id}")

    def checkers(self, kind: str | None = None) -> list[str]:
        """Checker ids ("claim:x", "finding:y"), optionally of one kind, in file order."""
        return [e.checker for e in self.entries if e.checker and (kind is None or e.checker_kind == kind)]

    def edges(self) -> list[tuple[str, str]]:
        """(used, user) pairs: the user entry depends on the used one."""
        return [(u, e.id) for e in self.entries for u in e.uses]

    def used_by(self, id: str) -> list[str]:
        return [e.id for e in self.entries if id in e.uses]


def _entry(raw: dict, n: int) -> Entry:
    where = f"entry {n + 1} ({raw.get('id', '?')!s})"
    unknown = set(raw) - _FIELDS
    if unknown:
        raise BlueprintError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("id", "kind", "title", "statement", "paper_ref"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise BlueprintError(f"{where}: field {key!r} must be a non-empty string")
    if not _ID.match(raw["id"]):
        raise BlueprintError(f"{where}: id must look like 'kind:name'")
    if raw["kind"] not in KINDS:
        raise BlueprintError(f"{where}: kind must be one of {', '.join(KINDS)}, got {raw['kind']!r}")
    uses = raw.get("uses", [])
    if not isinstance(uses, list) or not all(isinstance(u, str) for u in uses):
        raise BlueprintError(f"{where}: uses must be a list of entry ids")
    checker = raw.get("checker")
    if checker is not None and (not isinstance(checker, str) or not _CHECKER.match(checker)):
        raise BlueprintError(f"{where}: checker must look like 'claim:<id>' or 'finding:<id>'")
    explain = raw.get("explain", "")
    if not isinstance(explain, str):
        raise BlueprintError(f"{where}: explain must be a string")
    return Entry(raw["id"], raw["kind"], raw["title"].strip(), raw["statement"].strip(),
                 raw["paper_ref"].strip(), tuple(uses), checker, explain.strip())


def parse(text: str) -> Blueprint:
    """Parse and validate blueprint TOML: unique ids and checkers, known edges, no cycles."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BlueprintError(f"blueprint is not valid TOML: {exc}") from None
    raw = data.get("entry")
    if not isinstance(raw, list) or not raw:
        raise BlueprintError("blueprint has no [[entry]] tables")
    entries = [_entry(r, n) for n, r in enumerate(raw)]
    ids: set[str] = set()
    checkers: set[str] = set()
    for e in entries:
        if e.id in ids:
            raise BlueprintError(f"duplicate entry id {e.id}")
        ids.add(e.id)
        if e.checker:
            if e.checker in checkers:
                raise BlueprintError(f"checker {e.checker} is named by two entries")
            checkers.add(e.checker)
    for e in entries:
        for u in e.uses:
            if u not in ids:
                raise BlueprintError(f"entry {e.id} uses unknown entry {u}")
            if u == e.id:
                raise BlueprintError(f"entry {e.id} uses itself")
    _check_acyclic(entries)
    return Blueprint(tuple(entries))


def _check_acyclic(entries: list[Entry]) -> None:
    uses = {e.id: e.uses for e in entries}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for u in uses[node]:
            if state.get(u) == 1:
                cycle = path[path.index(u):] + [u] if u in path else [node, u]
                raise BlueprintError("blueprint has a cycle: " + " -> ".join(cycle))
            if u not in state:
                visit(u, path + [u])
        state[node] = 2

    for e in entries:
        if e.id not in state:
            visit(e.id, [e.id])


def packaged_text() -> str:
    return resources.files("universality").joinpath("data", "blueprint.toml").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load() -> Blueprint:
    """The packaged blueprint (parsed once)."""
    return parse(packaged_text())

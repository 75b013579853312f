"""The blueprint: one source for the claims' text, consistent with the registries, a valid DAG."""
from __future__ import annotations

from pathlib import Path

import pytest

from universality import blueprint as bp
from universality.claims import CLAIMS, FINDINGS

ROOT = Path(__file__).resolve().parents[1]

# Checker ids of claims/findings that other, in-flight modules register (K-shot, losses, universal
# approximation). The lead empties this set at merge; then every blueprint checker must be registered.
PENDING_CHECKERS: set[str] = set()  # feat/losses registered the loss and K-shot checkers


def test_packaged_copy_is_identical_to_proofs():
    human = (ROOT / "proofs" / "blueprint.toml").read_text(encoding="utf-8")
    assert human == bp.packaged_text(), (
        "proofs/blueprint.toml and universality/data/blueprint.toml differ: "
        "cp proofs/blueprint.toml universality/data/blueprint.toml")


def test_covers_the_paper():
    b = bp.load()
    ids = {e.id for e in b}
    for n in range(1, 8):
        assert f"eq:{n}" in ids
    assert {"lemma:4.1", "thm:6.1", "thm:6.2"} <= ids
    kinds = {e.kind for e in b}
    assert kinds == set(bp.KINDS)
    assert all(e.statement and e.paper_ref and e.title for e in b)


def _known_specs():
    """Claim/finding specs: the registries plus module-level ClaimSpec/FindingSpec objects (claims that
    only run on request, e.g. claims/universal.py, are built without the registry)."""
    import importlib
    import pkgutil

    import universality.claims as pkg
    from universality.claims.base import ClaimSpec, FindingSpec

    claims, findings = dict(CLAIMS), dict(FINDINGS)
    for mod in pkgutil.iter_modules(pkg.__path__):
        m = importlib.import_module(f"universality.claims.{mod.name}")
        for value in vars(m).values():
            if isinstance(value, ClaimSpec):
                claims.setdefault(value.id, value)
            elif isinstance(value, FindingSpec):
                findings.setdefault(value.id, value)
    return claims, findings


def test_every_registered_checker_has_an_entry():
    b = bp.load()
    claims, findings = _known_specs()
    for cid in claims:
        assert b.for_checker("claim", cid) is not None, f"claim {cid} has no blueprint entry"
    for fid in findings:
        assert b.for_checker("finding", fid) is not None, f"finding {fid} has no blueprint entry"


def test_every_blueprint_checker_is_registered_or_pending():
    claims, findings = _known_specs()
    registered = {f"claim:{c}" for c in claims} | {f"finding:{f}" for f in findings}
    missing = [c for c in bp.load().checkers() if c not in registered and c not in PENDING_CHECKERS]
    assert not missing, f"blueprint names checkers nobody registers: {missing}"


def test_pending_checkers_are_not_registered_yet():
    """When an in-flight module lands, its ids must leave PENDING_CHECKERS (the lead empties it)."""
    claims, findings = _known_specs()
    registered = {f"claim:{c}" for c in claims} | {f"finding:{f}" for f in findings}
    landed = sorted(PENDING_CHECKERS & registered)
    assert not landed, f"registered now, remove from PENDING_CHECKERS: {landed}"
    assert PENDING_CHECKERS <= set(bp.load().checkers()), "a pending id has no blueprint entry"


def test_registries_take_their_text_from_the_blueprint():
    b = bp.load()
    claims, findings = _known_specs()
    for cid, spec in claims.items():
        e = b.for_checker("claim", cid)
        assert (spec.title, spec.statement, spec.paper_ref) == (e.title, e.statement, e.paper_ref), (
            f"claim {cid}: its text differs from blueprint entry {e.id}; edit proofs/blueprint.toml and "
            "take the text from it (@claim without title/statement/paper_ref, or claims.base.spec_text)")
    for fid, spec in findings.items():
        e = b.for_checker("finding", fid)
        assert (spec.title, spec.paper_ref) == (e.title, e.paper_ref), (
            f"finding {fid}: its text differs from blueprint entry {e.id}; edit proofs/blueprint.toml")


def test_decorator_keywords_are_a_fallback(monkeypatch):
    from universality.claims import base

    monkeypatch.setattr(base, "CLAIMS", {})
    base.claim("not-in-blueprint", title="T", paper_ref="P", statement="S", method="M")(lambda c: None)
    assert base.CLAIMS["not-in-blueprint"].title == "T"
    with pytest.raises(ValueError, match="no blueprint entry"):
        base.claim("also-not-in-blueprint", method="M")(lambda c: None)
    # a blueprint entry wins over the keywords
    base.claim("grad-rank-one", title="old", paper_ref="old", statement="old", method="M")(lambda c: None)
    assert base.CLAIMS["grad-rank-one"].title == bp.load().for_checker("claim", "grad-rank-one").title


@pytest.mark.parametrize("text, message", [
    ('[[entry]]\nid="a:x"\nkind="lemma"\ntitle="t"\nstatement="s"\npaper_ref="p"\nuses=["a:y"]\n', "unknown entry"),
    ('[[entry]]\nid="a:x"\nkind="poem"\ntitle="t"\nstatement="s"\npaper_ref="p"\n', "kind must be"),
    ('[[entry]]\nid="a:x"\nkind="lemma"\ntitle="t"\nstatement="s"\npaper_ref="p"\nuses=["a:y"]\n'
     '[[entry]]\nid="a:y"\nkind="lemma"\ntitle="t"\nstatement="s"\npaper_ref="p"\nuses=["a:x"]\n', "cycle"),
    ('[[entry]]\nid="a:x"\nkind="lemma"\ntitle="t"\nstatement="s"\npaper_ref="p"\n' * 2, "duplicate"),
    ('[[entry]]\nid="a:x"\nkind="lemma"\ntitle="t"\nstatement="s"\npaper_ref="p"\nchecker="x"\n', "checker"),
    ('[[entry]]\nid="a:x"\nkind="lemma"\ntitle=""\nstatement="s"\npaper_ref="p"\n', "title"),
    ("not toml [", "not valid TOML"),
])
def test_malformed_blueprints_are_refused(text, message):
    with pytest.raises(bp.BlueprintError, match=message):
        bp.parse(text)


def _texts():
    """Every statement, title and explanation of the blueprint, and every finding's computed text."""
    from universality import Config, verify
    from universality.report.typeset import prose

    out = []
    for e in bp.load():
        out += [("$" + e.statement + "$", e.id), (e.title, e.id)] + ([(e.explain, e.id)] if e.explain else [])
    rep = verify(Config(N=6, J=2, L=2, samples=2))
    for f in rep.findings:
        out += [(prose(f.headline), f.id), (prose(f.explanation), f.id), (prose(f.condition), f.id)]
    return out


def test_every_text_converts_to_mathml():
    """latex2mathml parses every formula of the blueprint and of the findings (no source fallback)."""
    from universality.report.typeset import html, split

    for text, where in _texts():
        out = html(text)
        assert '<code class="tex">' not in out, (where, text)
        assert out.count("<math") == sum(1 for m, _ in split(text) if m), where


def test_mathml_keeps_negation_check_and_star():
    """The symbols the old mathtext path lost: the slash of not-implies, the check accent, the star."""
    from universality.report.typeset import html, plain

    stmt = {e.id: e.statement for e in bp.load()}
    psd = html("$" + stmt["gap:psd-implication"] + "$")
    assert "&#x021CF;" in psd and "&#x021D2;" not in psd  # U+21CF (not implies), not U+21D2 (implies)
    check = html("$" + stmt["gap:zero-label"] + "$")
    assert "<mover><mi>e</mi><mo>&#x002C7;</mo></mover>" in check  # e with a caron (the check accent)
    star = html("$" + stmt["def:discretisation"] + "$")
    assert "<msup><mi>x</mi><mo>&#x022C6;</mo></msup>" in star  # x with a star superscript
    assert "⇏" in plain("$" + stmt["gap:psd-implication"] + "$")
    assert "ě" in __import__("unicodedata").normalize("NFC", plain(r"$\check e(y)$"))
    assert plain(r"$x^\star$") == "x★"


def test_no_ascii_pseudo_math_survives_in_titles():
    for e in bp.load():
        from universality.report.typeset import split

        prose_only = "".join(s for m, s in split(e.title) if not m)
        for bad in ("_", "^", "zbar", "theta", "e_check", "e_bar", "alpha", "!=", ">=", "=>", "x*", "yhat"):
            assert bad not in prose_only, (e.id, bad)


def test_spec_text_for_specs_outside_the_registries():
    from universality.claims.base import spec_text

    e = bp.load().for_checker("claim", "universal-converges")
    assert spec_text("claim", "universal-converges") == {
        "title": e.title, "paper_ref": e.paper_ref, "statement": e.statement}
    assert set(spec_text("finding", "sign-of-y")) == {"title", "paper_ref"}
    with pytest.raises(ValueError):
        spec_text("claim", "no-such-claim")

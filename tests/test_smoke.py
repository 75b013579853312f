from universality import Config, verify


def test_default_example_passes():
    report = verify(Config(N=6, J=4, L=4))
    assert report.construction["layout"] == "compact"
    assert report.passed
    assert {c.verdict.value for c in report.claims} == {"PASS"}
    assert all(f.demonstrated for f in report.findings)

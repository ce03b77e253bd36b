"""The support matrix block: what render() writes, claims() reads back, per version, for families on one version only
and cells that differ between versions."""
import support_matrix as sm


def test_render_and_claims_round_trip_over_versions():
    old = {("PAG", "sd15"): [(True, True)], ("VSF", "sd15"): [(True, True)], ("PAG", "flux"): [(True, True)]}
    new = {("PAG", "sd15"): [(True, True)], ("VSF", "sd15"): [(True, True)], ("PAG", "flux"): [(False, True)],
           ("PAG", "wan21"): [(True, True)], ("VSF", "wan21"): [(True, False)]}
    block = sm.render({"0.3.75": old, "0.33.0": new})
    assert "| Wan | 0.33.0 | yes | ? |" in block
    assert "| Flux | 0.3.75, 0.33.0 | yes (0.3.75); error (0.33.0) | - |" in block
    assert sm.claims(block, "0.3.75") == sm.expected_claims(old, "0.3.75")
    assert sm.claims(block, "0.33.0") == sm.expected_claims(new, "0.33.0")
    assert sm.claims(block, "0.40.0") is None

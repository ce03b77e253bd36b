"""Checks shared by the block-level method tests (SLG, TPG, S2-Guidance); a node is given as make(model) -> patched
model. What every such node must do on every family is in test_block_methods.py."""
import torch

import tiny_models as tm
from foreign_patches import with_foreign_patches
from tiny_models import assert_close, assert_differs, max_diff  # noqa: F401  (also used as checks.assert_close, ...)


def changes_output(make, family: str, cfg: float = 4.0) -> torch.Tensor:
    """The patched model's sample differs from plain CFG's and is finite; returns it."""
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=cfg)
    out = tm.ksample(make(model), family, cfg=cfg)
    assert torch.isfinite(out).all()
    assert_differs(out, plain)
    return out


def keeps_foreign_patches(make, family: str):
    """Another pack's pass-through attention override and double_block 0 replace keep running (also when we perturb
    that block) and change nothing."""
    model = tm.make_model(family)
    reference = tm.ksample(make(model), family, cfg=4.0)
    foreign, calls = with_foreign_patches(model)
    assert_close(tm.ksample(make(foreign), family, cfg=4.0), reference)
    assert calls["override"] > 0 and calls["block"] > 0


def keeps_a_foreign_attn1_patch(make, family: str = "sd15"):
    """A pass-through foreign attn1 replace inside a UNet block we perturb keeps running and changes nothing."""
    model = tm.make_model(family)
    reference = tm.ksample(make(model), family, cfg=4.0)
    seen = []

    def foreign_attn1(q, k, v, extra_options):
        seen.append(q.shape[0])
        heads = extra_options["n_heads"]
        q, k, v = (t.view(t.shape[0], -1, heads, t.shape[-1] // heads).transpose(1, 2) for t in (q, k, v))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(out.shape[0], -1, heads * out.shape[-1])
    foreign = model.clone()
    foreign.set_model_attn1_replace(foreign_attn1, "middle", 0)
    assert_close(tm.ksample(make(foreign), family, cfg=4.0), reference)
    assert seen and max(seen) == 3

"""beta-CFG node (arXiv 2502.10574)."""
from comfy_api.latest import io

from ..guiders.beta_cfg import BetaCFGRule
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node

NAME = "beta-CFG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="beta-CFG", nodes=(Node("BetaCFG"),),
    paper="Malarz et al., arXiv 2502.10574",
    fixes="guidance strength over time, normalised direction",
    evaluations="2",
    models="all",
    at_cfg_1="no effect",
    claim="better quality/adherence trade-off than constant CFG")
A = Number("a", 2.0, 0.1, 20.0, "Beta distribution a: with b, shapes the guidance over time (paper: 2). Below 1 "
           "the guidance is strongest at the start (the density is taken at 2% of the run at the earliest, so it "
           "stays finite).")
B = Number("b", 2.0, 0.1, 20.0, "Beta distribution b (paper: 2; the README example uses 3). Below 1 the guidance "
           "is strongest at the end (taken at 98% of the run at the latest).")
GAMMA = Number("gamma", 1.0, 0.0, 2.0, "Norm exponent: guidance is divided by ||c - u||^gamma per sample (paper: 1, "
               "so its size is cfg * pdf; 0 keeps plain CFG magnitudes).")


class BetaCFG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "BetaCFG", NAME, "cfg",
            "beta-CFG, CFG with adaptive scaling (Malarz et al., arXiv 2502.10574). In the model-output space "
            "(eps or velocity): u + cfg * Beta_pdf(t; a, b) * (c - u) / ||c - u||^gamma, so guidance is zero at the "
            "first and last step and peaks mid-run, with a normalised direction. With gamma 1 its strength depends "
            "on the latent size: tune cfg per resolution. Cost: 2 model evaluations per step; no effect at cfg 1.",
            [A.input(), B.input(), GAMMA.input()], "The model with beta-CFG as its CFG step.",
            search_aliases=("beta cfg", "time-varying cfg"))

    @classmethod
    def execute(cls, model, a: float, b: float, gamma: float) -> io.NodeOutput:
        patched = model.clone()
        BetaCFGRule(A.check(NAME, a), B.check(NAME, b), GAMMA.check(NAME, gamma)).install(patched)
        return io.NodeOutput(patched)

"""TSG node: Time-Step Guidance (Sadat et al., ICLR 2025, arXiv 2407.02687)."""
from comfy_api.latest import io

from ..attention_patches.families import model_names
from ..guiders.tsg import NAME as TSG_NAME, TSG, time_embedding_module
from .common import NodeInputError, Number, model_patch_schema, patched
from .method_info import MethodInfo, Node

METHOD_INFO = MethodInfo(
    name="TSG", nodes=(Node("TSG"),),
    paper="Sadat et al., ICLR 2025, arXiv 2407.02687",
    fixes="CFG-like guidance needing no condition: the uncond pass is the cond pass with a noised time-step embedding",
    evaluations="2 inside [t_min, t_max], 1 outside; one batched call",
    models="every family",
    at_cfg_1="no effect",
    claim="CFG-like quality gain from a perturbed time-step embedding, no condition needed")

SCALE = Number("noise_scale", 3.0, 0.0, 100.0, "s in t_emb~ = t_emb + s * t^alpha * std(t_emb) * n: the size of the "
               "perturbation relative to the embedding's own std (paper, Stable Diffusion text-conditional: 3.0; "
               "DiT class-conditional: 2.0).", step=0.05)
ALPHA = Number("alpha", 0.25, 0.0, 10.0, "Power of t (t = diffusers timestep / 1000, 1 = pure noise): the "
               "perturbation shrinks as t falls (paper, Stable Diffusion: 0.25; DiT: 1; 0 = constant).", step=0.05)
T_MIN = Number("t_min", 400.0, 0.0, 1000.0, "Apply TSG only for diffusers timesteps t_min <= t <= t_max (0-1000, "
               "DDPM timestep for eps/v models, 1000 x sigma for flow models). Outside, the step is cond only and "
               "costs 1 evaluation (paper, Stable Diffusion: [400, 1000]).", step=1.0)
T_MAX = Number("t_max", 1000.0, 0.0, 1000.0, "Upper end of the TSG interval (see t_min).", step=1.0)


class TimeStepGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "TSG", TSG_NAME, "cfg",
            "Time-Step Guidance (Sadat, Kansy, Hilliges, Weber, ICLR 2025, arXiv 2407.02687). Guidance that needs "
            "no condition: the uncond pass is replaced by the cond pass with its time-step embedding perturbed by "
            "Gaussian noise, t_emb + s * t^alpha * std(t_emb) * n, and the KSampler's cfg is the TSG scale w in "
            "D = D(t_emb~) + w (D(t_emb) - D(t_emb~)) (paper, Stable Diffusion: w 4). The negative prompt is "
            "ignored. Defaults are the paper's Stable Diffusion text-conditional setting. Cost: 2 model evaluations "
            "per step inside [t_min, t_max], 1 outside; no effect at cfg 1.",
            [SCALE.input(), ALPHA.input(), T_MIN.input(), T_MAX.input()],
            "The model with TSG in place of its uncond pass.",
            search_aliases=("time-step guidance", "guidance without condition"))

    @classmethod
    def execute(cls, model, noise_scale: float, alpha: float, t_min: float, t_max: float) -> io.NodeOutput:
        scale, power = SCALE.check(TSG_NAME, noise_scale), ALPHA.check(TSG_NAME, alpha)
        low, high = T_MIN.check(TSG_NAME, t_min), T_MAX.check(TSG_NAME, t_max)
        if low > high:
            raise NodeInputError(f"{TSG_NAME}: the interval is empty: t_min ({low}) must not exceed t_max ({high})")
        try:
            module = time_embedding_module(*reversed(model_names(model.model)))
        except ValueError as error:
            raise NodeInputError(f"{TSG_NAME}: {error}") from None
        if module is None:
            raise NodeInputError(f"{TSG_NAME}: this model ({type(model.model).__name__}) has no time-step embedding "
                                 "module where its family adapter says (attention_patches/families/)")
        return io.NodeOutput(patched(model, TSG(scale, power, low, high)))

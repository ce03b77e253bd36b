"""CFG++ sampler node (Chung et al., ICLR 2025, arXiv 2406.08070)."""
from comfy_api.latest import io

from ..guiders.cfgpp import NAME, SAMPLERS, cfgpp_sampler
from .common import CATEGORY, PREFIX, NodeInputError, check_number, schema
from .method_info import MethodInfo, Node

METHOD_INFO = MethodInfo(
    name="CFG++", nodes=(Node("CFGPPSampler", "CFG++ sampler", tag="SAMPLER"),),
    paper="Chung et al., ICLR 2025, arXiv 2406.08070",
    fixes="off-manifold CFG steps; cfg means lambda (0.4-1)",
    evaluations="2",
    models="eps, v and flow models",
    at_cfg_1="still renoises with the uncond")

ETA = ("eta", 1.0, 0.0, 1.0)
DDIM_ETA = ("ddim_eta", 0.0, 0.0, 1.0)
S_NOISE = ("s_noise", 1.0, 0.0, 10.0)


class CFGPPSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id=f"{PREFIX}CFGPPSampler",
            display_name=NAME,
            category=f"{CATEGORY}/samplers",
            description=(
                "CFG++ (Chung et al., ICLR 2025, arXiv 2406.08070) as a SAMPLER for SamplerCustom / "
                "SamplerCustomAdvanced. Each step moves to the CFG prediction as usual but renoises with the "
                "unconditional (negative) prediction instead of the guided one, which keeps the sample on the data "
                "manifold. The cfg of the guider / SamplerCustom is CFG++'s lambda: use about 0.4-1.0 (0.6 is the "
                "paper's SD1.5 value, 1.0 for few-step models); values above 1 leave the manifold. At cfg 1 it still "
                "differs from the plain sampler (it renoises with the negative). Correct for EPS/V models and for "
                "flow models (SD3, Flux, Wan, ...). Needs a negative conditioning. "
                "Cost: 2 model evaluations per step, also at cfg 1."),
            inputs=[
                io.Combo.Input("sampler", options=list(SAMPLERS), default="euler",
                               tooltip="euler: Euler CFG++ (= deterministic DDIM CFG++). euler_ancestral: adds fresh "
                                       "noise each step (eta). ddim: the paper's DDIM CFG++ with DDIM's eta "
                                       "(ddim_eta; 0 = deterministic). dpmpp_2m: DPM-Solver++(2M) CFG++."),
                io.Float.Input(ETA[0], default=ETA[1], min=ETA[2], max=ETA[3], step=0.01,
                               tooltip="euler_ancestral only: amount of fresh noise per step (ComfyUI default 1.0; "
                                       "0 gives euler)."),
                io.Float.Input(DDIM_ETA[0], default=DDIM_ETA[1], min=DDIM_ETA[2], max=DDIM_ETA[3], step=0.01,
                               tooltip="ddim only: DDIM's eta (paper default 0 = deterministic; 1 = DDPM-like). "
                                       "ddim with ddim_eta x equals euler_ancestral with eta x."),
                io.Float.Input(S_NOISE[0], default=S_NOISE[1], min=S_NOISE[2], max=S_NOISE[3], step=0.01,
                               tooltip="euler_ancestral and ddim: scale of the fresh noise (1.0 = exact)."),
            ],
            outputs=[io.Sampler.Output(tooltip="The CFG++ sampler; the guider's cfg is CFG++'s lambda (0.4-1.0).")],
        )

    @classmethod
    def execute(cls, sampler: str, eta: float, ddim_eta: float, s_noise: float) -> io.NodeOutput:
        if sampler not in SAMPLERS:
            raise NodeInputError(f"{NAME}: 'sampler' must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        eta, ddim_eta, s_noise = (check_number(NAME, spec[0], value, spec[2], spec[3])
                                  for spec, value in ((ETA, eta), (DDIM_ETA, ddim_eta), (S_NOISE, s_noise)))
        return io.NodeOutput(cfgpp_sampler(sampler, eta=ddim_eta if sampler == "ddim" else eta, s_noise=s_noise))

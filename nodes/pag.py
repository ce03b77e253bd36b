"""PAG node: Perturbed-Attention Guidance (arXiv 2403.17377) on every architecture."""
from comfy_api.latest import io

from ..attention_patches.hook import PerturbedPass
from ..attention_patches.layers import layer_map
from ..attention_patches.pag import pag_perturbation
from ..guiders.extra_pass import ExtraCondPass
from ..guiders.pag import PAGPostCFG
from .common import CATEGORY, PREFIX, Number, NodeInputError
from .schedule import SCHEDULE_TYPE

NAME = "PAG (Guidance Zoo)"
SCALE = Number("scale", 3.0, 0.0, 100.0, "PAG scale s (paper/diffusers default 3.0). 0 turns PAG off and costs nothing.")


class PAG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=f"{PREFIX}PAG",
            display_name=NAME,
            category=f"{CATEGORY}/perturbation",
            description=(
                "Perturbed-Attention Guidance (Ahn et al., ECCV 2024, arXiv 2403.17377). Runs the conditional "
                "prediction a second time with the self-attention map of chosen layers replaced by the identity and "
                "steers away from it: D = D_cfg + scale * (D_c - D_perturbed). The extra pass runs in the same batched model call as cond and uncond. Works on UNets (SD1.5, SDXL) and on "
                "DiTs (SD3, Flux, Flux2, Chroma, Qwen-Image, Lumina2, Wan); on joint attention image tokens keep "
                "seeing the text. Cost: 3 model evaluations per step with CFG, 2 at cfg 1 (PAG alone)."),
            inputs=[
                io.Model.Input("model", tooltip="The model to patch."),
                SCALE.input(),
                io.String.Input("layers", default="", multiline=False,
                                tooltip="Self-attention layers to perturb; empty = this model's default. UNets: "
                                        "'middle' (default, the paper's mid block), 'input 4-8', 'output 0:1'. "
                                        "Flux/Chroma/Flux2: 'double 0-3', 'single 10' (default 'double 1'). "
                                        "SD3/Qwen-Image/Lumina2/Wan: 'block 1' (default). Comma-separate several."),
                SCHEDULE_TYPE.Input("scale_schedule", optional=True,
                                    tooltip="Optional Guidance Schedule: scale * f(t) inside its sigma interval; "
                                            "outside it PAG's extra pass is not run."),
            ],
            outputs=[io.Model.Output(tooltip="The model with PAG added after its CFG step.")],
        )

    @classmethod
    def execute(cls, model, scale: float, layers: str, scale_schedule=None) -> io.NodeOutput:
        scale = SCALE.check(NAME, scale)
        try:
            lmap = layer_map(model)
            chosen = lmap.parse(layers)
        except ValueError as error:
            raise NodeInputError(f"{NAME}: {error}") from None
        patched = model.clone()
        if scale == 0:
            return io.NodeOutput(patched)
        active = None
        if scale_schedule is not None:
            def active(model_options, sigma):
                return scale_schedule.factor(model_options, sigma) > 0
        extra_pass = ExtraCondPass(PerturbedPass(lmap, chosen, pag_perturbation, NAME), active)
        extra_pass.install(patched)
        patched.set_model_sampler_post_cfg_function(PAGPostCFG(extra_pass, scale, scale_schedule))
        return io.NodeOutput(patched)

"""S-CFG (arXiv 2404.05384): attention maps captured in the step's own cond/uncond call, then a spatial CFG rate as a
combine rule: D = D_u + w R (D_c - D_u). No extra model evaluation."""
from __future__ import annotations

import torch

from ..attention_patches.scfg import AttentionMapCapture, CapturedMaps
from ..core.scfg import rate_map, region_masks
from .combine import CombineRule, Step
from .main_call import MainCallHook
from ..core.run_state import run_state


class SCFGCapture(MainCallHook):
    """Installs the capture patches in the step's cond/uncond call and keeps the maps for the combine rule."""
    step_keys = ("maps",)

    def __init__(self, capture: AttentionMapCapture):
        self.capture = capture

    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        if conds[1] is None:
            return executor(model, conds, x, timestep, model_options)
        captured = CapturedMaps()
        out = executor(model, conds, x, timestep, self.capture.options(model_options, captured))
        state["maps"] = captured.maps
        return out


class SCFGRule(CombineRule):
    name = "S-CFG (Guidance Zoo)"

    def __init__(self, capture: SCFGCapture, min_rate: float, max_rate: float, max_guidance: float):
        self.capture, self.min_rate, self.max_rate, self.max_guidance = capture, min_rate, max_rate, max_guidance

    def install(self, patcher) -> None:
        self.capture.install(patcher)
        super().install(patcher)

    def rate(self, step: Step) -> torch.Tensor:
        maps = run_state(step.model_options, self.capture).pop("maps", None)
        if not maps:
            raise RuntimeError(f"{self.name}: no attention maps were captured in this step's cond/uncond model call "
                               "(another node replaced ComfyUI's batched model call, or the chosen layers were not "
                               "run); S-CFG cannot work without them")
        token_masks, fore_mask = region_masks(list(maps.values()))
        return rate_map(step.cond - step.uncond, token_masks, fore_mask, step.scale, self.min_rate, self.max_rate,
                        self.max_guidance)

    def rewrite(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        """cond' = D_u + R (D_c - D_u), so that ComfyUI's CFG gives D_u + w R (D_c - D_u)."""
        rate = self.rate(step).to(step.cond.dtype)
        return step.uncond + rate * (step.cond - step.uncond), step.uncond

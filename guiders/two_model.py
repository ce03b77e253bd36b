"""The second model of the two-model methods (Autoguidance, unconditional priors, domain guidance, RLG,
personalization guidance): checked against the main model, loaded by ComfyUI's model management, run per step.

Two ways to hold it, chosen from the models given:
- A separate model (another checkpoint): it is registered as an additional model of the sampled MODEL, so ComfyUI
  loads, offloads and casts it together with the main one (`load_models_gpu([main] + additional)`), with its own
  weight patches (LoRA) applied. Its passes run through `calc_cond_batch` on its own BaseModel with its own
  model_options (wrappers, attention patches).
- A variant of the main model's weights (the same checkpoint with other LoRA strengths, or an interpolation of two
  weight sets): both cannot be patched in place at once, so the difference is a ComfyUI weight hook
  (comfy/hooks.py) on the second model's conds. ComfyUI's calc_cond_batch runs hooked conds in a call of their own
  and switches the patched weights for it (hook_backup keeps the main weights on the offload device); no second
  copy of the network is loaded.
"""
from __future__ import annotations

import comfy.hooks
import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
import comfy.samplers
import torch

from ..core.run_state import SharedPatch, run_state

MODEL_KEY = "guidance_zoo_second_model"
ADDITIVE_ADAPTERS = {"lora": 4, "loha": 7, "lokr": 8}  # adapter name -> index of its dora_scale


class TwoModelError(ValueError):
    """The two models cannot be used together; the message names the node."""


def check_pair(node: str, main, second, second_input: str) -> None:
    """Both models present and of one family: the same latent space and prediction type."""
    for name, model in (("model", main), (second_input, second)):
        if model is None:
            raise TwoModelError(f"{node}: '{name}' is missing; this method needs two models (connect '{name}').")
        if not isinstance(model, comfy.model_patcher.ModelPatcher):
            raise TwoModelError(f"{node}: '{name}' must be a MODEL, got {type(model).__name__}.")
    a, b = main.model, second.model
    sampling_a, sampling_b = main.get_model_object("model_sampling"), second.get_model_object("model_sampling")
    # ComfyUI builds each model's sampling class on the fly from (sampling, prediction) bases: compare those
    if type(a.latent_format) is not type(b.latent_format) or type(sampling_a).__bases__ != type(sampling_b).__bases__:
        raise TwoModelError(
            f"{node}: the two models are of different families ('model' is {type(a.model_config).__name__} with "
            f"{type(a.latent_format).__name__} latents, '{second_input}' is {type(b.model_config).__name__} with "
            f"{type(b.latent_format).__name__} latents); both must share the latent space and prediction type.")


def _invertible(patch: tuple) -> bool:
    """A weight patch that is linear in its strength (diff, LoRA, LoHa, LoKr without DoRA), so it can be undone."""
    strength_model, value, function = patch[2], patch[1], patch[4]
    if strength_model != 1.0 or function is not None:
        return False
    if isinstance(value, tuple) and (len(value) == 1 or value[0] == "diff"):
        return True
    dora_index = ADDITIVE_ADAPTERS.get(getattr(value, "name", None))
    return dora_index is not None and value.weights[dora_index] is None


def _tail(patches: list, prefix: list) -> list:
    common = 0
    while common < min(len(patches), len(prefix)) and patches[common] is prefix[common]:
        common += 1
    return patches[common:]


def weight_difference(node: str, main, second, share: float = 1.0) -> dict[str, list[tuple]]:
    """Patches that turn main's patched weights into main's + share * (second's - main's), per weight key.

    Both patchers share one BaseModel; entries both lists start with cancel. main's own extra patches are undone
    by applying them with negated strength, which needs them to be linear (LoRA-like); second's extra patches are
    applied as they are when share is 1, and scaled (so also linear) otherwise.
    """
    out = {}
    for key in set(main.patches) | set(second.patches):
        mine, theirs = main.patches.get(key, []), second.patches.get(key, [])
        undo, do = _tail(mine, theirs), _tail(theirs, mine)
        for patch in undo + (do if share != 1.0 else []):
            if not _invertible(patch):
                raise TwoModelError(f"{node}: the two models share one checkpoint and differ by a weight patch on "
                                    f"'{key}' that cannot be undone or scaled (DoRA, OFT, a model merge...); load "
                                    "the second model as its own checkpoint instead.")
        entries = [(-share * p[0],) + tuple(p[1:]) for p in undo]
        entries += [(share * p[0],) + tuple(p[1:]) for p in do]
        if entries:
            out[key] = entries
    return out


def interpolation_patches(node: str, main, other, share: float) -> dict[str, list[tuple]]:
    """Patches that turn main's weights into (1 - share) * main + share * other (a weight interpolation).

    When other is a variant of main's checkpoint this is a scaled weight difference (LoRA-sized); else each weight
    of other enters as a merge patch referencing its tensors (ComfyUI's ModelMergeSimple form), with no copy.
    """
    if main.is_clone(other):
        return weight_difference(node, main, other, share)
    patches = {}
    main_keys = set(main.model_state_dict())
    for key, value in other.get_key_patches("diffusion_model.").items():
        if key in main_keys:
            patches[key] = [(share, value, 1.0 - share, None, None)]
    return patches


class WeightVariantHook(comfy.hooks.WeightHook):
    """A ComfyUI weight hook carrying ready patch lists (strength, value, strength_model, offset, function)."""

    def __init__(self, patches: dict[str, list[tuple]] | None = None):
        super().__init__()
        self.patches, self.need_weight_init = patches or {}, False

    def add_hook_patches(self, model, model_options, target_dict, registered):
        register(model, self)
        registered.add(self)
        return True

    def clone(self):
        c = super().clone()
        c.patches = self.patches
        return c


def register(patcher, hook: WeightVariantHook) -> None:
    """Puts the hook's patches on a patcher (they act only while a cond carrying the hook runs)."""
    with patcher.use_ejected():
        patcher.hook_patches[hook.hook_ref] = {k: list(v) for k, v in hook.patches.items()}


class SecondModel(SharedPatch):
    """The second model of a pair: a separate model, a weight variant of the main one, or the main one itself."""

    def __init__(self, node: str, main, second=None, patches: dict | None = None):
        self.node = node
        self.separate = second is not None and not main.is_clone(second)
        if patches is None and second is not None and not self.separate:
            patches = weight_difference(node, main, second)
        self.second = second if self.separate else None
        self.hooks = None
        if patches:
            self.hooks = comfy.hooks.HookGroup()
            self.hooks.add(WeightVariantHook(patches))

    @property
    def batches_with_main(self) -> bool:
        """Its conds can go into the main model's calc_cond_batch (hooked or identical weights)."""
        return not self.separate

    def attach(self, patched) -> None:
        """Makes the sampled MODEL (a clone) carry the second model: loaded with it, or its weight hook."""
        if self.separate:
            others = [m for m in patched.get_additional_models_with_key(MODEL_KEY) if m is not self.second]
            patched.set_additional_models(MODEL_KEY, others + [self.second])
            patched.add_callback_with_key(comfy.patcher_extension.CallbacksMP.ON_PRE_RUN, MODEL_KEY,
                                          lambda _: self.second.pre_run())
            patched.add_callback_with_key(comfy.patcher_extension.CallbacksMP.ON_CLEANUP, MODEL_KEY,
                                          lambda _: self.second.cleanup())
        elif self.hooks is not None:
            register(patched, self.hooks.hooks[0])

    def hooked(self, cond: list | None) -> list | None:
        """Copies of a processed cond that run on the second model's weights (for batches_with_main)."""
        if cond is None or self.hooks is None:
            return cond
        return [dict(c, hooks=self.hooks) for c in cond]

    def options(self, model_options: dict) -> dict:
        """The separate model's own model_options for this run (its wrappers and patches, the run's sigmas)."""
        state = run_state(model_options, self)
        if "options" not in state:
            options = comfy.model_patcher.create_model_options_clone(self.second.model_options)
            transformer_options = options.setdefault("transformer_options", {})
            for name, own in (("wrappers", self.second.wrappers), ("callbacks", self.second.callbacks)):
                comfy.patcher_extension.merge_nested_dicts(transformer_options.setdefault(name, {}), own,
                                                           copy_dict1=False)
            run_options = model_options.get("transformer_options", {})
            if "sample_sigmas" in run_options:
                transformer_options["sample_sigmas"] = run_options["sample_sigmas"]
            comfy.samplers.cast_to_load_options(options, device=self.second.load_device,
                                                dtype=self.second.model_dtype())
            state["options"] = options
        return state["options"]

    def predict(self, model, conds: list, x: torch.Tensor, sigma: torch.Tensor, model_options: dict) -> list:
        """Denoised predictions of the second model for conds (processed conds of the main run)."""
        if self.separate:
            if self.second.model.current_patcher is None:
                self.second.pre_run()
            return comfy.samplers.calc_cond_batch(self.second.model, conds, x, sigma, self.options(model_options))
        return comfy.samplers.calc_cond_batch(model, [self.hooked(c) for c in conds], x, sigma, model_options)

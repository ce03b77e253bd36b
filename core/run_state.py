"""Per-run state: kept in the run's own model_options, which ComfyUI clones at the start of every sampling run."""
STATE_KEY = "guidance_zoo_state"


class RunStates:
    """Not a dict, so ComfyUI's nested model_options copies within a run share it instead of copying it."""

    def __init__(self):
        self.by_owner: dict[int, dict] = {}


def run_state(model_options: dict, owner: object) -> dict:
    """The state dict of one patch for the current sampling run; empty at the start of each run."""
    states = model_options.setdefault(STATE_KEY, RunStates())
    return states.by_owner.setdefault(id(owner), {})


class SharedPatch:
    """A patch object holding settings only (its state lives in run_state), so model clones share it.

    ModelPatcher.clone() deep-copies model_options but not wrappers; sharing keeps a patch's post-CFG function and
    its wrappers pointing at one object.
    """

    def __deepcopy__(self, memo: dict) -> "SharedPatch":
        return self


def sample_with_conds(executor, owner: object, key: str, conds: list, *args, **kwargs):
    """An OUTER_SAMPLE wrapper's body: the run samples with `conds` added to the sampler's conds under `key`, so the
    sampler encodes them as it encodes its own (latent image, masks, stream layout); owner's run state gets the
    sampler's conds as "conds". The added conds are gone again after the run."""
    guider = executor.class_obj
    guider.conds[key] = conds
    run_state(guider.model_options, owner)["conds"] = guider.conds
    try:
        return executor(*args, **kwargs)
    finally:
        guider.conds.pop(key, None)

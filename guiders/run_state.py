"""Per-run state: kept in the run's own model_options, which ComfyUI clones at the start of every sampling run."""
STATE_KEY = "guidance_zoo_state"


def run_state(model_options: dict, owner: object) -> dict:
    """The state dict of one patch for the current sampling run; empty at the start of each run."""
    return model_options.setdefault(STATE_KEY, {}).setdefault(id(owner), {})


class SharedPatch:
    """A patch object holding settings only (its state lives in run_state), so model clones share it.

    ModelPatcher.clone() deep-copies model_options but not wrappers; sharing keeps a patch's post-CFG function and
    its wrappers pointing at one object.
    """

    def __deepcopy__(self, memo: dict) -> "SharedPatch":
        return self

"""Whole-block perturbations for the hook layer: skip a block (its output is its input), change a block's input
tokens, or pick a random subset of blocks per step, on every family, in one extra pass of the positive cond.

DiTs (SD3, Flux, Flux2, Chroma, Qwen-Image, Wan): "dit" block replace patches, chaining any replace already there.
UNets (their transformer blocks, named like the attention layers: 'middle 0:3') and Lumina2 have no block patches:
a diffusion-model wrapper registers forward hooks on the chosen block modules for the duration of the one model call
that carries the pass and removes them in `finally`; no module's forward is replaced.
In ComfyUI's batched cond/uncond call only the rows of the extra cond are perturbed. Random choices (a token
permutation, the dropped blocks) come from a generator seeded by the node's seed and the step's index, never from
the global RNG, so a run is reproducible and a batch of two equals two runs of one.
"""
from __future__ import annotations

import torch

import comfy.patcher_extension

from ..core.run_steps import sampler_position
from .block_hooks import BlockHooks
from .hook import PerturbedPass, chain_replace, joint_text_len
from .pass_state import PassState, count_generated
from .reference_tokens import block_tokens, block_with_references
from .families.base import BlockReach
from .layers import Layer
from .per_thread import PerThread

WRAPPER_KEY = "guidance_zoo_blocks"


class BlockPerturbation:
    """What the perturbed pass does to its blocks. This base class skips every chosen block (skip-layer guidance);
    subclasses choose a subset per step (select) or change the block's input instead of skipping it (apply)."""
    seed = 0

    def select(self, layers: list[Layer], generator: torch.Generator) -> list[Layer]:
        return layers

    def apply(self, hidden: torch.Tensor, image: slice, generator: torch.Generator) -> torch.Tensor | None:
        """The block's new input hidden states (B, N, C), or None to skip the block."""
        return None


class BlockPassState(PassState):
    pending = PerThread(factory=dict)     # layer -> (its input hidden states, the perturbed rows), per forward
    call_options = PerThread(factory=dict)  # the running call's transformer_options, for blocks that get none

    def __init__(self, targets: set[Layer], chunk: int | None = None):
        super().__init__(targets, chunk)
        self.generator: torch.Generator | None = None
        self.selected: set[Layer] = set()


def step_seed(seed: int, transformer_options: dict) -> int:
    """A seed for one step of one run: the node's seed mixed with the step's index in the run's sigma schedule."""
    sigmas = transformer_options.get("sigmas")
    index = sampler_position({"transformer_options": transformer_options}, sigmas)[0] if sigmas is not None else 0
    return (seed * 1_000_003 + index) % (2 ** 63)


class BlockPass(BlockHooks, PerturbedPass):
    """A perturbed pass acting on whole blocks; `layers` are the candidate blocks."""

    def new_state(self, chunk: int | None = None) -> BlockPassState:
        return BlockPassState(set(self.layers), chunk)

    def options(self, model_options: dict, state: BlockPassState) -> dict:
        options, transformer_options = self.registered(model_options, state)
        if self.lmap.family.forward_wrapper == comfy.patcher_extension.WrappersMP.APPLY_MODEL:
            comfy.patcher_extension.add_wrapper_with_key(
                self.lmap.family.forward_wrapper, WRAPPER_KEY + "_options", self._recorder(state), transformer_options)
        if self.lmap.family.block_reach is BlockReach.FORWARD_HOOKS:
            comfy.patcher_extension.add_wrapper_with_key(
                self.lmap.family.forward_wrapper, WRAPPER_KEY, self._hooks_wrapper(state), transformer_options)
            return options
        count_generated(self.lmap.family, state, transformer_options)
        for layer in self.lmap.layers:
            chain_replace(transformer_options, "dit", self.lmap.patch_key(layer), self._block_replace, layer, state)
        return options

    def _prepare(self, state: BlockPassState, transformer_options: dict) -> None:
        """Seed the call's generator and draw the step's blocks once, at the first block of the call."""
        if state.generator is None:
            state.generator = torch.Generator().manual_seed(step_seed(self.perturb.seed, transformer_options))
            state.selected = set(self.perturb.select(self.layers, state.generator))

    def _image(self, layer: Layer, tokens: int, state: BlockPassState) -> slice:
        """The image tokens of a block's hidden states (reference_tokens.block_tokens)."""
        return block_tokens(self.lmap, layer, tokens, state)[0]

    def _start(self, layer: Layer, state: BlockPassState, hidden: torch.Tensor, transformer_options: dict):
        """(rows, new input or None for a skip) when this block call is perturbed, else None."""
        transformer_options = transformer_options or state.call_options
        self._prepare(state, transformer_options)
        if layer not in state.selected:
            return None
        if state.chunk is not None and "cond_or_uncond" not in transformer_options:
            raise RuntimeError(f"{self.owner}: this {self.lmap.model_name} model does not tell its blocks which batch "
                               f"rows are which cond; the perturbation cannot run batched here")
        rows, any_row = state.rows(transformer_options.get("cond_or_uncond"), hidden.shape[0], hidden.device)
        if not any_row:
            return None
        state.hits += 1
        part = hidden if rows is None else hidden[rows]
        tokens = part.flatten(1, -2)                # (B, N, C); Cosmos blocks take (B, T, H, W, C)
        changed = self.perturb.apply(tokens, self._image(layer, tokens.shape[1], state), state.generator)
        changed = None if changed is None else changed.reshape(part.shape)
        if changed is not None and rows is not None:
            merged = hidden.clone()
            merged[rows] = changed.to(merged.dtype)
            changed = merged
        return rows, changed

    @staticmethod
    def _keep_input(rows: torch.Tensor | None, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        if rows is None:
            return before
        return torch.where(rows.view(-1, *([1] * (after.ndim - 1))), before.to(after.dtype), after)

    def _block_replace(self, layer: Layer, state: BlockPassState, previous):
        def block(args: dict, extra: dict) -> dict:
            def run(block_args: dict) -> dict:
                return previous(block_args, extra) if previous is not None else extra["original_block"](block_args)
            if args.get("txt") is not None:
                state.text_len = joint_text_len(args)
            if layer not in state.targets:
                return run(args)
            image = self.lmap.family.block_image
            if self.lmap.family.block_stream is not None:
                return self._stream_block(layer, state, args, run)
            started = self._start(layer, state, args[image], args.get("transformer_options") or {})
            if started is None:
                return run(args)
            rows, changed = started
            if (refs := block_tokens(self.lmap, layer, args[image].shape[1], state)[1]) is not None:
                return block_with_references(run, args, image, rows, changed, refs, self._keep_input)
            if changed is not None:
                return run({**args, image: changed})
            if rows is None:
                return args
            # blocks add in place
            kept = {key: args[key].clone() for key in (image, "txt") if args.get(key) is not None}
            out = run(args)
            for key, before in kept.items():
                if out.get(key) is not None and out[key].shape == before.shape:
                    out[key] = self._keep_input(rows, before, out[key])
            return out
        return block

    def _stream_block(self, layer: Layer, state: BlockPassState, args: dict, run) -> dict:
        """A block whose image entry is a tuple of streams (LTX-2: video, audio): only the image stream is changed or
        keeps its input; the other streams run the block as usual."""
        image, stream = self.lmap.family.block_image, self.lmap.family.block_stream
        streams = tuple(args[image])
        started = self._start(layer, state, streams[stream], args.get("transformer_options") or {})
        if started is None:
            return run(args)
        rows, changed = started
        if changed is not None:
            return run({**args, image: streams[:stream] + (changed,) + streams[stream + 1:]})
        before = streams[stream].clone()        # blocks add in place
        out = run(args)
        after = tuple(out[image])
        kept = self._keep_input(rows, before, after[stream])
        return {**out, image: after[:stream] + (kept,) + after[stream + 1:]}

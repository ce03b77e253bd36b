"""The digits model: a small class-conditional SD1.5-class UNet trained on scikit-learn's bundled digits.

Shared by the nodes (nodes/digits.py), the training script (scripts/train_digits.py) and the benchmark
(scripts/benchmark_digits.py). Imports only torch and ComfyUI (no relative imports), so scripts can load it by path.

Representation: each 8x8 digit (values 0..16) is upsampled bilinearly to 32x32, scaled into [-RANGE, RANGE] and
pixel-unshuffled into a 4x16x16 tensor: the model's data space (x0). That is the latent of a 128x128
EmptyLatentImage, so the stock latent node fits. SD1.5's latent format divides sampler outputs by 0.18215
(process_latent_out); the decode multiplies it back.

The model is ComfyUI's own UNet (comfy.supported_models.SD15 with a tiny unet_config, eps prediction, ComfyUI's
1000-step sigma schedule), so every sampler and model patch applies unchanged. Its conditioning is a learned
CONTEXT_TOKENS x CONTEXT_DIM context per digit; row 10 is the learned null context (the negative prompt).
channel_mult [1, 2] gives 256 tokens in the outer attention layers and 64 in the middle block (SD1.5 at 512 px has 64
there): attention perturbations (PAG, SEG, TPG) need tokens to act on. use_scale_shift_norm lets the time step
through: with 32 channels in 32 groups, GroupNorm removes a per-channel time offset (the first model ignored t).
"""
import os

import torch
import torch.nn.functional as F

RANGE = 0.85                      # data lives in [-RANGE, RANGE]; beyond it is overshoot
LATENT_SCALE = 0.18215            # SD15 latent_format.scale_factor
CONTEXT_TOKENS = 4
CONTEXT_DIM = 64
NULL = 10                         # index of the null context
LATENT_SHAPE = (4, 16, 16)
IMAGE_SIZE = 32
CONTEXT_KEY = "digit_context"     # [11, CONTEXT_TOKENS, CONTEXT_DIM] in the weights file
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "digits")
DEFAULT_WEIGHTS = "digits_unet.safetensors"

UNET_CONFIG = dict(
    use_checkpoint=False, image_size=32, use_spatial_transformer=True, legacy=False, adm_in_channels=None,
    in_channels=4, out_channels=4, model_channels=32, num_res_blocks=[1, 1], channel_mult=[1, 2],
    transformer_depth=[1, 1], transformer_depth_output=[1, 1, 1, 1], transformer_depth_middle=1, num_head_channels=16,
    use_linear_in_transformer=False, context_dim=CONTEXT_DIM, use_temporal_resblock=False,
    use_temporal_attention=False, use_scale_shift_norm=True)


def load_digits():
    """scikit-learn's bundled digits (no download): images [N, 8, 8] in 0..16 (float32) and labels [N]."""
    from sklearn.datasets import load_digits as sk_load
    data = sk_load()
    return torch.tensor(data.images, dtype=torch.float32), torch.tensor(data.target, dtype=torch.long)


def images_to_pixels(images8: torch.Tensor) -> torch.Tensor:
    """[N, 8, 8] digits in 0..16 -> [N, 32, 32] pixels in [-RANGE, RANGE] (the representation everything uses)."""
    x = images8[:, None] / 16.0
    x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)[:, 0]
    return (x * 2.0 - 1.0) * RANGE


def classifier(probability: bool = True):
    """The benchmark's digit classifier: an RBF SVC (C 10) fitted on the real digits' 32x32 pixels
    (images_to_pixels); it reads [N, 1024] pixels in [-RANGE, RANGE] (clip samples first). probability=False skips
    the probability calibration (5x faster to fit; predict gives the same classes)."""
    from sklearn.svm import SVC
    images, labels = load_digits()
    real = images_to_pixels(images).reshape(len(labels), -1).double().numpy()
    calibrated = {"probability": True} if probability else {}  # passed only when asked: 1.9 deprecates it
    return SVC(C=10.0, gamma="scale", random_state=0, **calibrated).fit(real, labels.numpy())


def augment(pixels: torch.Tensor, generator: torch.Generator, shift: float = 2.0, degrees: float = 8.0):
    """Random shifts (up to `shift` pixels) and rotations (up to `degrees`) of [N, S, S] pixels, background kept."""
    n, size = pixels.shape[0], pixels.shape[-1]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * degrees * torch.pi / 180
    offset = (torch.rand(n, 2, generator=generator) * 2 - 1) * shift * 2 / size
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    moved = F.grid_sample(pixels[:, None] + RANGE, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return moved[:, 0] - RANGE


def roughness(pixels: torch.Tensor) -> torch.Tensor:
    """Per image: mean absolute difference of neighbouring pixels of [N, S, S] pixels clipped to the data range.
    Sampler output that never turned into a digit (noise) is far rougher than any real digit."""
    p = pixels.clamp(-RANGE, RANGE)
    return (p.diff(dim=1).abs().mean(dim=(1, 2)) + p.diff(dim=2).abs().mean(dim=(1, 2))) / 2


def pixels_to_x0(pixels: torch.Tensor) -> torch.Tensor:
    """[N, 32, 32] -> [N, 4, 16, 16] model data space."""
    return F.pixel_unshuffle(pixels[:, None], 2)


def x0_to_pixels(x0: torch.Tensor) -> torch.Tensor:
    """[N, 4, 16, 16] model data space -> [N, 32, 32] pixels (not clamped)."""
    return F.pixel_shuffle(x0, 2)[:, 0]


def latent_to_pixels(samples: torch.Tensor) -> torch.Tensor:
    """A sampler's output LATENT samples (SD15 process_latent_out applied) -> [N, 32, 32] pixels (not clamped)."""
    return x0_to_pixels(samples.float() * LATENT_SCALE)


def pixels_to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels in [-RANGE, RANGE] -> [0, 1], clamped."""
    return ((pixels / RANGE + 1.0) / 2.0).clamp(0.0, 1.0)


def build_base_model(device=None):
    """ComfyUI's SD15 BaseModel with the tiny config, float32, weights not yet loaded."""
    import comfy.supported_models as sm
    config = sm.SD15(dict(UNET_CONFIG))
    config.set_inference_dtype(torch.float32, None)
    return config.get_model({}, "", device=device or torch.device("cpu"))


def init_weights_(diffusion_model: torch.nn.Module, seed: int) -> None:
    """PyTorch default init (comfy.ops skips it), with the residual output convs zeroed."""
    torch.manual_seed(seed)
    for module in diffusion_model.modules():
        for cls in (torch.nn.Conv2d, torch.nn.Linear, torch.nn.GroupNorm, torch.nn.LayerNorm):
            if isinstance(module, cls):
                cls.reset_parameters(module)
                break
    from comfy.ldm.modules.attention import SpatialTransformer
    from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock
    with torch.no_grad():
        for module in diffusion_model.modules():
            if isinstance(module, ResBlock):
                zero = module.out_layers[-1]
            elif isinstance(module, SpatialTransformer):
                zero = module.proj_out
            else:
                continue
            zero.weight.zero_()
            if zero.bias is not None:
                zero.bias.zero_()


def weights_path(name: str = DEFAULT_WEIGHTS) -> str:
    return os.path.join(WEIGHTS_DIR, name)


def available_weights() -> list[str]:
    try:
        names = sorted(n for n in os.listdir(WEIGHTS_DIR) if n.endswith(".safetensors"))
    except OSError:
        names = []
    return names or [DEFAULT_WEIGHTS]


def load_state(path: str):
    """(diffusion_model state dict, context [11, T, D]) from a weights file."""
    from safetensors.torch import load_file
    state = load_file(path)
    context = state.pop(CONTEXT_KEY)
    return state, context


def load_patcher(name: str = DEFAULT_WEIGHTS):
    """(ModelPatcher, context [11, T, D]): the trained model on ComfyUI's load/offload devices."""
    import comfy.model_management as mm
    import comfy.model_patcher
    state, context = load_state(weights_path(name))
    model = build_base_model(mm.unet_offload_device())
    missing, unexpected = model.diffusion_model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{name}: weights do not match the digits UNet (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    model.diffusion_model.eval()
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                               offload_device=mm.unet_offload_device())
    return patcher, context


def conditioning(context: torch.Tensor, index: int):
    """A CONDITIONING list for digit `index` (0-9) or NULL."""
    return [[context[index:index + 1].clone(), {}]]

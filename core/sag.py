"""Self-Attention Guidance kernels (Hong et al., ICCV 2023, arXiv 2210.00939).

SAG blurs the denoised prediction where the model's self-attention looks most (the tokens that receive more than the
average attention), puts the blurred prediction back at the step's noise level with the noise the prediction implies,
and steers away from the model's prediction of that degraded input. The attention each token receives is summed over
query rows in chunks, so no N x N matrix is held.
"""
import torch
import torch.nn.functional as F

BLUR_TAPS = 9            # the official Gaussian kernel size (diffusers' and ComfyUI's SAG use the same)
MASK_THRESHOLD = 1.0     # a token is salient when it receives more than the average attention, which is 1


def attention_received(q: torch.Tensor, k: torch.Tensor, scale: float, chunk: int = 1024) -> torch.Tensor:
    """SAG (arXiv 2210.00939): the attention each key token receives, softmax(q k^T scale) summed over the queries
    and averaged over heads, (B, N); q, k are (B, H, N, D); fp32, query rows in chunks."""
    q, k = q.float(), k.float()
    total = torch.zeros(k.shape[:3], dtype=torch.float32, device=k.device)
    for start in range(0, q.shape[2], chunk):
        logits = q[:, :, start:start + chunk] @ k.transpose(-1, -2) * scale
        total += torch.softmax(logits, dim=-1).sum(dim=2)
    return total.mean(dim=1)


def salient_mask(received: torch.Tensor, grid: tuple[int, int], size: tuple[int, int],
                 threshold: float = MASK_THRESHOLD) -> torch.Tensor:
    """SAG (arXiv 2210.00939): 1 where a token of the (h, w) grid receives more than threshold attention, else 0,
    upsampled (nearest) to the latent's (H, W): (B, 1, H, W) in fp32."""
    mask = (received > threshold).float().reshape(received.shape[0], 1, *grid)
    return F.interpolate(mask, size=size, mode="nearest")


def _gaussian_taps(sigma: float, taps: int, device: torch.device) -> torch.Tensor:
    x = torch.arange(taps, dtype=torch.float32, device=device) - (taps - 1) / 2
    weights = torch.exp(-0.5 * (x / sigma) ** 2)
    return weights / weights.sum()


def gaussian_blur(x: torch.Tensor, sigma: float, taps: int = BLUR_TAPS) -> torch.Tensor:
    """SAG (arXiv 2210.00939): Gaussian blur of a latent over its last two dims (per channel and frame), separable,
    with reflect padding; the kernel is cut to fit a side shorter than taps // 2 + 1."""
    h, w = x.shape[-2:]
    image = x.reshape(-1, 1, h, w).float()
    for axis, length in ((2, h), (3, w)):
        size = min(taps, 2 * length - 1)
        if size < 2:
            continue
        weights = _gaussian_taps(sigma, size, x.device)
        kernel = weights.view(1, 1, size, 1) if axis == 2 else weights.view(1, 1, 1, size)
        pad = (0, 0, size // 2, size // 2) if axis == 2 else (size // 2, size // 2, 0, 0)
        image = F.conv2d(F.pad(image, pad, mode="reflect"), kernel)
    return image.reshape(x.shape).to(x.dtype)


def degrade(x0: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """SAG (arXiv 2210.00939): the prediction x0 blurred where mask (B, 1, H, W) is 1 and kept elsewhere; a 5-D
    (video) latent gets the same mask on every frame."""
    mask = mask.reshape(mask.shape[0], *([1] * (x0.ndim - 3)), *mask.shape[-2:])
    return torch.where(mask > 0, gaussian_blur(x0, sigma), x0)


def renoise(x: torch.Tensor, x0: torch.Tensor, degraded: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
    """SAG (arXiv 2210.00939): the degraded prediction at the noise level of x, with the noise that x0 implies:
    x = signal x0 + sigma eps gives signal degraded + sigma eps = x + signal (degraded - x0)."""
    return x + signal * (degraded - x0)


def sag_guidance(denoised: torch.Tensor, degraded: torch.Tensor, degraded_prediction: torch.Tensor,
                 scale: float) -> torch.Tensor:
    """SAG (arXiv 2210.00939): D + s (degraded - D(renoised degraded)), which is the paper's eps + s (eps - eps_SAG)
    written for the denoised prediction."""
    return denoised + scale * (degraded - degraded_prediction)

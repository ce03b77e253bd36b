"""Conversions between ComfyUI's denoised prediction D and the model-output space (eps, v or flow velocity)."""
import torch


def broadcast_sigma(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """sigma of shape [B] reshaped to broadcast against a latent (4-D or 5-D)."""
    return sigma.reshape(sigma.shape[:1] + (1,) * (like.ndim - 1)).to(like.dtype)


def to_model_output(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, prediction: str) -> torch.Tensor:
    """eps (eps models), velocity (flow models) or v (v-prediction, VP form) from a denoised prediction."""
    s = broadcast_sigma(sigma, x)
    if prediction == "v":
        return (x / (s * s + 1.0) - denoised) * (s * s + 1.0) ** 0.5 / s
    return (x - denoised) / s


def from_model_output(x: torch.Tensor, output: torch.Tensor, sigma: torch.Tensor, prediction: str) -> torch.Tensor:
    """Inverse of to_model_output."""
    s = broadcast_sigma(sigma, x)
    if prediction == "v":
        return x / (s * s + 1.0) - output * s / (s * s + 1.0) ** 0.5
    return x - s * output

"""FasterCache CFG-Cache kernels (Lv et al., ICLR 2025, arXiv 2410.19355)."""
import torch


def low_frequency_mask(height: int, width: int, device=None) -> torch.Tensor:
    """FasterCache (arXiv 2410.19355): disk of radius min(H, W) // 5 at the centre of an fftshift-ed spectrum."""
    radius = min(height, width) // 5
    y = torch.arange(height, device=device).view(-1, 1) - height // 2
    x = torch.arange(width, device=device).view(1, -1) - width // 2
    return x * x + y * y <= radius * radius


def split_frequencies(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FasterCache (arXiv 2410.19355): (low, high) parts of the centred 2-D spectrum, per frame (last two dims).

    The reference shifts every dim (torch.fft.fftshift without dim) and its mask is the same for every batch and
    channel entry, so shifting only the two spatial dims gives the same result. Computed in fp32."""
    spectrum = torch.fft.fftshift(torch.fft.fft2(x.float()), dim=(-2, -1))
    mask = low_frequency_mask(x.shape[-2], x.shape[-1], x.device)
    return spectrum * mask, spectrum * ~mask


def frequency_deltas(cond_out: torch.Tensor, uncond_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FasterCache (arXiv 2410.19355): low- and high-frequency spectra of (uncond - cond), the cached deltas."""
    low_u, high_u = split_frequencies(uncond_out)
    low_c, high_c = split_frequencies(cond_out)
    return low_u - low_c, high_u - high_c


def estimate_uncond(cond_out: torch.Tensor, delta_low: torch.Tensor, delta_high: torch.Tensor) -> torch.Tensor:
    """FasterCache (arXiv 2410.19355), Eq. 9-10: uncond = iFFT(LF(cond) + dL + HF(cond) + dH), deltas pre-scaled."""
    low_c, high_c = split_frequencies(cond_out)
    spectrum = low_c + delta_low + high_c + delta_high
    return torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1))).real.to(cond_out.dtype)

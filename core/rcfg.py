"""StreamDiffusion residual CFG kernel (Kodaira et al., arXiv 2312.12491)."""
import torch


def residual_uncond(x: torch.Tensor, reference: torch.Tensor, delta: float) -> torch.Tensor:
    """RCFG (StreamDiffusion, arXiv 2312.12491): the uncond prediction D_u = x - sigma * delta * eps_stock with the
    stock noise eps_stock = (x - R) / sigma pointing from the reference R to the current latent, so x - delta (x -
    R)."""
    return x - delta * (x - reference)

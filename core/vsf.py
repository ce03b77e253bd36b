"""Value Sign Flip kernels (Guo & Du, arXiv 2508.10931): negative-prompt tokens whose attention values are flipped."""
import torch


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def _flip_bias(like: torch.Tensor, kept: int, flipped: int, offset: float) -> torch.Tensor:
    """Additive (1, 1, 1, kept + flipped) logit bias: 0 on the kept keys, -offset on the flipped ones."""
    bias = like.new_zeros(1, 1, 1, kept + flipped)
    bias[..., kept:] = -offset
    return bias


def vsf_cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_neg: torch.Tensor, v_neg: torch.Tensor,
                        scale: float, offset: float) -> torch.Tensor:
    """VSF (arXiv 2508.10931) cross-attention: the queries attend to [prompt, negative] with the negative's values
    multiplied by -scale and its logits lowered by offset. All (B, H, N, D); returns (B, H, N, D)."""
    bias = _flip_bias(q, k.shape[2], k_neg.shape[2], offset)
    return _attend(q, torch.cat([k, k_neg], dim=2), torch.cat([v, -scale * v_neg], dim=2), bias)


def vsf_joint_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, image: slice, prompt: slice,
                        negative: slice, scale: float, offset: float) -> torch.Tensor:
    """VSF (arXiv 2508.10931) on joint attention, the official SD3 token layout: text = [prompt P, negative N1,
    negative N2] (prompt slice covers P and N1). Image queries attend to [image, P, N1, N2 with values * -scale and
    logits - offset]; P and N1 queries to [image, P, N1]; N2 queries to [image, N2]. q, k, v (B, H, N, D)."""
    out = torch.empty_like(q)
    k_img, v_img = k[:, :, image], v[:, :, image]
    k_p, v_p, k_n, v_n = k[:, :, prompt], v[:, :, prompt], k[:, :, negative], v[:, :, negative]
    seen_k, seen_v = torch.cat([k_img, k_p], dim=2), torch.cat([v_img, v_p], dim=2)
    out[:, :, image] = vsf_cross_attention(q[:, :, image], seen_k, seen_v, k_n, v_n, scale, offset)
    out[:, :, prompt] = _attend(q[:, :, prompt], seen_k, seen_v)
    out[:, :, negative] = _attend(q[:, :, negative], torch.cat([k_img, k_n], dim=2), torch.cat([v_img, v_n], dim=2))
    return out

"""Perturbed-Attention Guidance kernels (Ahn et al., ECCV 2024, arXiv 2403.17377)."""
import torch

from .attention import additive_mask


def pag_extrapolate(denoised: torch.Tensor, cond: torch.Tensor, perturbed: torch.Tensor, scale: float) -> torch.Tensor:
    """PAG (arXiv 2403.17377) combine: D + s * (D_c - D_perturbed)."""
    return denoised + scale * (cond - perturbed)


def identity_self_attention(v: torch.Tensor) -> torch.Tensor:
    """PAG (arXiv 2403.17377) perturbed self-attention: the identity attention map, so every token returns its value."""
    return v


def joint_identity_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, text_len: int, text_first: bool,
                             scale: float, mask: torch.Tensor | None = None, chunk: int = 4096) -> torch.Tensor:
    """PAG (arXiv 2403.17377) on joint attention: image tokens attend to themselves and all text tokens only.

    q, k, v are (B, H, N, D); mask is an optional attention mask over (N, N). Text rows keep full attention.
    Costs O(chunk * N_txt) memory; no N x N matrix is formed.
    """
    n = q.shape[2]
    mask = additive_mask(mask, torch.float32)
    if mask is not None:
        mask = mask.expand(mask.shape[0], mask.shape[1], n, n)
    if text_first:
        txt, img = slice(0, text_len), slice(text_len, n)
    else:
        txt, img = slice(n - text_len, n), slice(0, n - text_len)
    dtype = q.dtype
    q, k, v = q.float(), k.float(), v.float()
    out = torch.empty_like(v)
    if text_len > 0:
        out[:, :, txt] = torch.nn.functional.scaled_dot_product_attention(
            q[:, :, txt], k, v, attn_mask=None if mask is None else mask[:, :, txt], scale=scale)
    k_txt, v_txt = k[:, :, txt], v[:, :, txt]
    q_img, k_img, v_img = q[:, :, img], k[:, :, img], v[:, :, img]
    img_out = torch.empty_like(v_img)
    for start in range(0, q_img.shape[2], chunk):
        rows = slice(start, start + chunk)
        s_txt = torch.einsum("bhnd,bhmd->bhnm", q_img[:, :, rows], k_txt) * scale
        s_self = (q_img[:, :, rows] * k_img[:, :, rows]).sum(-1, keepdim=True) * scale
        if mask is not None:
            img_rows = range(n)[img][rows]
            s_txt = s_txt + mask[:, :, img_rows.start:img_rows.stop, txt]
            span = slice(img_rows.start, img_rows.stop)
            diag = torch.diagonal(mask[:, :, span, span], dim1=-2, dim2=-1)
            s_self = s_self + diag.unsqueeze(-1)
        peak = torch.maximum(s_txt.amax(-1, keepdim=True), s_self) if text_len > 0 else s_self
        e_txt, e_self = (s_txt - peak).exp(), (s_self - peak).exp()
        total = e_txt.sum(-1, keepdim=True) + e_self
        img_out[:, :, rows] = (e_txt @ v_txt + e_self * v_img[:, :, rows]) / total
    out[:, :, img] = img_out
    return out.to(dtype)

"""PLADIS kernels (Kim & Sim, arXiv 2503.07677): sparsemax, alpha-entmax and the sparse/dense attention extrapolation.

All attention here takes q (B, H, Nq, D), k and v (B, H, Nk, D) and works on chunks of query rows, so memory stays
O(chunk * Nk); no Nq x Nk matrix is formed.
"""
import torch

SPARSEMAX = "sparsemax"
ENTMAX15 = "entmax1.5"


def _masked_logits(scores: torch.Tensor) -> torch.Tensor:
    """Replace -inf (masked) logits by finite ones far below the row maximum, so the sort-based rules stay finite."""
    finite = torch.isfinite(scores)
    if bool(finite.all()):
        return scores
    peak = scores.masked_fill(~finite, float("-inf")).amax(-1, keepdim=True).clamp_min(-1e4)
    return torch.where(finite, scores, peak - 1e4)


def sparsemax(scores: torch.Tensor) -> torch.Tensor:
    """Sparsemax (Martins & Astudillo 2016; PLADIS arXiv 2503.07677 with alpha 2): Euclidean projection of each row of
    the last dim onto the probability simplex, exact by sorting."""
    z = _masked_logits(scores.float())
    z = z - z.amax(-1, keepdim=True)
    ordered, _ = torch.sort(z, dim=-1, descending=True)
    ks = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
    cumulative = ordered.cumsum(-1)
    support = (1 + ks * ordered > cumulative).sum(-1, keepdim=True)
    tau = (cumulative.gather(-1, support - 1) - 1) / support.to(z.dtype)
    return (z - tau).clamp_min(0)


def entmax15(scores: torch.Tensor) -> torch.Tensor:
    """1.5-entmax (Peters et al. 2019; PLADIS arXiv 2503.07677 default): p = [z/2 - tau]_+^2 with sum p = 1, tau exact
    from the sorted row (largest support k whose threshold lies below its k-th value)."""
    z = _masked_logits(scores.float()) / 2
    z = z - z.amax(-1, keepdim=True)
    ordered, _ = torch.sort(z, dim=-1, descending=True)
    ks = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
    mean = ordered.cumsum(-1) / ks
    spread = (ordered ** 2).cumsum(-1) / ks - mean ** 2
    taus = mean - torch.sqrt(((1 - ks * spread) / ks).clamp_min(0))
    support = (taus <= ordered).sum(-1, keepdim=True)
    tau = taus.gather(-1, support - 1)
    return (z - tau).clamp_min(0) ** 2


def entmax_bisect(scores: torch.Tensor, alpha: float, iterations: int = 60) -> torch.Tensor:
    """alpha-entmax for 1 < alpha <= 2 (Peters et al. 2019; PLADIS arXiv 2503.07677) by bisection on the threshold:
    p = [(alpha - 1) z - tau]_+^(1 / (alpha - 1)), normalised; any alpha, slower than the exact rules."""
    z = _masked_logits(scores.float()) * (alpha - 1)
    z = z - z.amax(-1, keepdim=True)
    power = 1 / (alpha - 1)
    low = torch.full_like(z[..., :1], -1.0)
    high = torch.full_like(low, -(1 / z.shape[-1]) ** (alpha - 1))
    for _ in range(iterations):
        tau = (low + high) / 2
        total = (z - tau).clamp_min(0).pow(power).sum(-1, keepdim=True)
        low = torch.where(total >= 1, tau, low)
        high = torch.where(total >= 1, high, tau)
    p = (z - (low + high) / 2).clamp_min(0).pow(power)
    return p / p.sum(-1, keepdim=True)


def sparse_weights(scores: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha-entmax of each row: exact sort-based rules for alpha 1.5 and 2 (sparsemax), bisection otherwise."""
    if alpha == 2.0:
        return sparsemax(scores)
    if alpha == 1.5:
        return entmax15(scores)
    return entmax_bisect(scores, alpha)


def pladis_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, lam: float, alpha: float,
                     mask: torch.Tensor | None = None, residual_only: bool = False, chunk: int = 1024) -> torch.Tensor:
    """PLADIS (arXiv 2503.07677): (lam * entmax_alpha(S) + (1 - lam) * softmax(S)) V with S = q k^T * scale, in fp32,
    query rows in chunks. residual_only gives lam * (entmax_alpha(S) - softmax(S)) V, the change to plain attention."""
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    out = torch.empty(q.shape[:-1] + (v.shape[-1],), dtype=torch.float32, device=v.device)
    for start in range(0, q.shape[2], chunk):
        rows = slice(start, start + chunk)
        scores = torch.einsum("bhnd,bhmd->bhnm", q[:, :, rows], k) * scale
        if mask is not None:
            scores = scores + (mask[:, :, rows] if mask.shape[2] > 1 else mask)
        dense = torch.softmax(scores, dim=-1)
        weights = lam * (sparse_weights(scores, alpha) - dense)
        if not residual_only:
            weights = weights + dense
        out[:, :, rows] = weights @ v
    return out.to(dtype)


def joint_pladis_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, lam: float, alpha: float,
                           text: slice, mask: torch.Tensor | None = None, residual_only: bool = False,
                           chunk: int = 1024) -> torch.Tensor:
    """PLADIS (arXiv 2503.07677) on joint (text + image) attention, our variant: the text-key part of each image row,
    as a distribution over the text keys, becomes lam * entmax_alpha + (1 - lam) * softmax of those logits, keeping the
    row's total text mass m; image-key weights and text rows are unchanged. That is plain attention plus
    lam * m * (entmax_alpha(S_txt) - softmax(S_txt)) V_txt (residual_only: that change alone). fp32, rows in chunks."""
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    n = q.shape[2]
    out = torch.empty(q.shape[:3] + (v.shape[-1],), dtype=torch.float32, device=v.device)
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        scores = torch.einsum("bhnd,bhmd->bhnm", q[:, :, rows], k) * scale
        if mask is not None:
            scores = scores + (mask[:, :, rows] if mask.shape[2] > 1 else mask)
        dense = torch.softmax(scores, dim=-1)
        block = torch.zeros_like(out[:, :, rows]) if residual_only else dense @ v
        is_image = torch.ones(rows.stop - rows.start, dtype=torch.bool, device=v.device)
        is_image[max(text.start - start, 0):max(text.stop - start, 0)] = False
        if bool(is_image.any()) and text.start < text.stop:
            text_scores = scores[:, :, is_image, text]
            text_mass = dense[:, :, is_image, text].sum(-1, keepdim=True)
            change = torch.nan_to_num(sparse_weights(text_scores, alpha) - torch.softmax(text_scores, dim=-1))
            block[:, :, is_image] += lam * text_mass * (change @ v[:, :, text])
        out[:, :, rows] = block
    return out.to(dtype)

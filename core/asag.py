"""ASAG kernels (Kim, AAAI 2026, arXiv 2511.07499): self-attention replaced by an adversarial Sinkhorn transport plan.

The cost of moving query i to key j is their own attention logit S_ij = q_i . k_j * scale, so the entropic plan
P = diag(e^f) exp(-S / eps) diag(e^g) prefers the least similar keys. Sinkhorn runs in the log domain in fp32 with the
dual potentials f (queries) and g (keys) kept as vectors; every logsumexp over rows or columns is accumulated over
chunks of query rows, so memory stays O(chunk * N) and no N x N matrix is formed.
"""
import torch

from .seg import chunked_attention


def _block(mask: torch.Tensor | None, rows: slice, cols: slice) -> torch.Tensor | None:
    """The part of a 4-D additive mask for these query rows and key columns (broadcast dims stay broadcast)."""
    if mask is None:
        return None
    return mask[:, :, rows if mask.shape[2] > 1 else slice(None), cols if mask.shape[3] > 1 else slice(None)]


def _log_kernel(q: torch.Tensor, k: torch.Tensor, scale: float, epsilon: float,
                mask: torch.Tensor | None) -> torch.Tensor:
    """-cost / eps for a chunk of queries, cost = the attention logits; masked pairs are -inf."""
    logits = -torch.einsum("bhnd,bhmd->bhnm", q, k) * (scale / epsilon)
    return logits if mask is None else logits + mask


def _finite_or_zero(t: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(t), t, torch.zeros_like(t))


def sinkhorn_potentials(q: torch.Tensor, k: torch.Tensor, scale: float, epsilon: float, iterations: int,
                        mask: torch.Tensor | None = None, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """ASAG (arXiv 2511.07499): dual potentials f (B, H, Nq) and g (B, H, Nk) of the entropic plan with cost S and
    marginals 1 per query and Nq/Nk per key, after `iterations` column updates, ending on a row update (so every row
    of the plan sums to 1). iterations 0 gives softmax(-S / eps)."""
    q, k = q.float(), k.float()
    nq, nk = q.shape[2], k.shape[2]
    f = torch.zeros(q.shape[:3], dtype=torch.float32, device=q.device)
    g = torch.zeros(k.shape[:3], dtype=torch.float32, device=q.device)
    log_column_mass = torch.log(torch.tensor(nq / nk, dtype=torch.float32))

    def row_update():
        for start in range(0, nq, chunk):
            rows = slice(start, start + chunk)
            kernel = _log_kernel(q[:, :, rows], k, scale, epsilon, _block(mask, rows, slice(None)))
            f[:, :, rows] = _finite_or_zero(-torch.logsumexp(kernel + g.unsqueeze(2), dim=-1))

    row_update()
    for _ in range(iterations):
        total = torch.full_like(g, float("-inf"))
        for start in range(0, nq, chunk):
            rows = slice(start, start + chunk)
            kernel = _log_kernel(q[:, :, rows], k, scale, epsilon, _block(mask, rows, slice(None)))
            total = torch.logaddexp(total, torch.logsumexp(kernel + f[:, :, rows].unsqueeze(-1), dim=2))
        g = _finite_or_zero(log_column_mass - total)
        row_update()
    return f, g


def sinkhorn_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, epsilon: float = 1.0,
                       iterations: int = 2, mask: torch.Tensor | None = None, chunk: int = 1024) -> torch.Tensor:
    """ASAG (arXiv 2511.07499) perturbed self-attention: P V with P the adversarial Sinkhorn plan, in fp32, chunked."""
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    f, g = sinkhorn_potentials(q, k, scale, epsilon, iterations, mask, chunk)
    out = torch.empty(q.shape[:3] + (v.shape[-1],), dtype=torch.float32, device=v.device)
    for start in range(0, q.shape[2], chunk):
        rows = slice(start, start + chunk)
        kernel = _log_kernel(q[:, :, rows], k, scale, epsilon, _block(mask, rows, slice(None)))
        out[:, :, rows] = torch.exp(kernel + f[:, :, rows].unsqueeze(-1) + g.unsqueeze(2)) @ v
    return out.to(dtype)


def joint_sinkhorn_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, image: slice,
                             epsilon: float = 1.0, iterations: int = 2, mask: torch.Tensor | None = None,
                             chunk: int = 1024) -> torch.Tensor:
    """ASAG (arXiv 2511.07499) on joint (text + image) attention: text rows keep softmax attention; each image row keeps
    its softmax weights on the text keys and spreads its remaining mass over the image keys by the adversarial plan of
    the image-image block (image self-attention is what ASAG perturbs)."""
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    n = q.shape[2]
    text = slice(image.stop, n) if image.start == 0 else slice(0, image.start)
    out = torch.empty(q.shape[:3] + (v.shape[-1],), dtype=torch.float32, device=v.device)
    if text.start < text.stop:
        out[:, :, text] = chunked_attention(q[:, :, text], k, v, scale, _block(mask, text, slice(None)), chunk)
    q_img, k_img, v_img = q[:, :, image], k[:, :, image], v[:, :, image]
    image_mask = _block(mask, image, image)
    f, g = sinkhorn_potentials(q_img, k_img, scale, epsilon, iterations, image_mask, chunk)
    for start in range(0, q_img.shape[2], chunk):
        rows = slice(start, start + chunk)
        seq_rows = slice(image.start + start, min(image.start + start + chunk, image.stop))
        logits = torch.einsum("bhnd,bhmd->bhnm", q_img[:, :, rows], k) * scale
        if mask is not None:
            logits = logits + _block(mask, seq_rows, slice(None))
        weights = torch.softmax(logits, dim=-1)
        image_mass = weights[:, :, :, image].sum(-1, keepdim=True)
        kernel = _log_kernel(q_img[:, :, rows], k_img, scale, epsilon, _block(image_mask, rows, slice(None)))
        plan = torch.exp(kernel + f[:, :, rows].unsqueeze(-1) + g.unsqueeze(2))
        out_rows = weights[:, :, :, text] @ v[:, :, text] + image_mass * (plan @ v_img)
        out[:, :, seq_rows] = out_rows
    return out.to(dtype)

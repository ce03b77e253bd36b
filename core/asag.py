"""ASAG kernels (Kim, AAAI 2026, arXiv 2511.07499): self-attention replaced by an adversarial Sinkhorn transport plan.

The cost of moving query i to key j is their own attention logit S_ij = q_i . k_j * scale, so the entropic plan
P = diag(e^f) exp(-S / eps) diag(e^g) prefers the least similar keys. Sinkhorn runs in the log domain in fp32 with the
dual potentials f (queries) and g (keys) kept as vectors; every logsumexp over rows or columns is accumulated over
chunks of query rows, so memory stays O(chunk * N) and no N x N matrix is formed.
"""
import torch

from .attention import chunked_attention


def _block(mask: torch.Tensor | None, rows: slice, cols: slice) -> torch.Tensor | None:
    """The part of a 4-D additive mask for these query rows and key columns (broadcast dims stay broadcast)."""
    if mask is None:
        return None
    return mask[:, :, rows if mask.shape[2] > 1 else slice(None), cols if mask.shape[3] > 1 else slice(None)]


def _queries(q_cost: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Query features [q * (-scale / eps), f, 1], so one matmul with _keys gives -S / eps + f_i + g_j."""
    return torch.cat([q_cost, f.unsqueeze(-1), torch.ones_like(f).unsqueeze(-1)], dim=-1)


def _keys(k: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return torch.cat([k, torch.ones_like(g).unsqueeze(-1), g.unsqueeze(-1)], dim=-1)


def _log_plan(queries: torch.Tensor, keys: torch.Tensor, rows: slice, mask: torch.Tensor | None) -> torch.Tensor:
    """log of the (unnormalised) plan for a chunk of query rows: -S / eps + f + g (+ mask, -inf where masked)."""
    logits = queries[:, :, rows] @ keys.transpose(-1, -2)
    return logits if mask is None else logits + _block(mask, rows, slice(None))


def _finite_or_zero(t: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(t), t, torch.zeros_like(t))


def sinkhorn_potentials(q: torch.Tensor, k: torch.Tensor, scale: float, epsilon: float, iterations: int,
                        mask: torch.Tensor | None = None, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """ASAG (arXiv 2511.07499): dual potentials f (B, H, Nq) and g (B, H, Nk) of the entropic plan with cost S and
    marginals 1 per query and Nq/Nk per key, after `iterations` column updates, ending on a row update (so every row
    of the plan sums to 1). iterations 0 gives softmax(-S / eps)."""
    q_cost, k = q.float() * (-scale / epsilon), k.float()
    nq, nk = q.shape[2], k.shape[2]
    f = torch.zeros(q.shape[:3], dtype=torch.float32, device=q.device)
    g = torch.zeros(k.shape[:3], dtype=torch.float32, device=q.device)
    log_column_mass = torch.log(torch.tensor(nq / nk, dtype=torch.float32))

    def row_update():
        queries, keys = _queries(q_cost, torch.zeros_like(f)), _keys(k, g)
        for start in range(0, nq, chunk):
            rows = slice(start, start + chunk)
            f[:, :, rows] = _finite_or_zero(-torch.logsumexp(_log_plan(queries, keys, rows, mask), dim=-1))

    row_update()
    for _ in range(iterations):
        queries, keys = _queries(q_cost, f), _keys(k, torch.zeros_like(g))
        total = torch.full_like(g, float("-inf"))
        for start in range(0, nq, chunk):
            total = torch.logaddexp(total, torch.logsumexp(_log_plan(queries, keys, slice(start, start + chunk), mask),
                                                           dim=2))
        g = _finite_or_zero(log_column_mass - total)
        row_update()
    return f, g


def _transport(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, epsilon: float, iterations: int,
               mask: torch.Tensor | None, chunk: int):
    """Yield (rows, P[rows] V) chunk by chunk for fp32 q, k, v."""
    f, g = sinkhorn_potentials(q, k, scale, epsilon, iterations, mask, chunk)
    queries, keys = _queries(q * (-scale / epsilon), f), _keys(k, g)
    for start in range(0, q.shape[2], chunk):
        rows = slice(start, start + chunk)
        yield rows, torch.exp(_log_plan(queries, keys, rows, mask)) @ v


def sinkhorn_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, epsilon: float = 1.0,
                       iterations: int = 2, mask: torch.Tensor | None = None, chunk: int = 1024) -> torch.Tensor:
    """ASAG (arXiv 2511.07499) perturbed self-attention: P V with P the adversarial Sinkhorn plan, in fp32, chunked."""
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    out = torch.empty(q.shape[:3] + (v.shape[-1],), dtype=torch.float32, device=v.device)
    for rows, moved in _transport(q, k, v, scale, epsilon, iterations, mask, chunk):
        out[:, :, rows] = moved
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
    image_mask = _block(mask, image, image)
    transported = _transport(q[:, :, image], k[:, :, image], v[:, :, image], scale, epsilon, iterations, image_mask,
                             chunk)
    for rows, moved in transported:
        seq_rows = slice(image.start + rows.start, min(image.start + rows.stop, image.stop))
        logits = torch.einsum("bhnd,bhmd->bhnm", q[:, :, seq_rows], k) * scale
        if mask is not None:
            logits = logits + _block(mask, seq_rows, slice(None))
        weights = torch.softmax(logits, dim=-1)
        image_mass = weights[:, :, :, image].sum(-1, keepdim=True)
        out[:, :, seq_rows] = weights[:, :, :, text] @ v[:, :, text] + image_mass * moved
    return out.to(dtype)

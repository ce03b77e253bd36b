"""PLADIS kernels (Kim & Sim, arXiv 2503.07677): the sparse/dense attention extrapolation, plain and on joint attention.

All attention here takes q (B, H, Nq, D), k and v (B, H, Nk, D). The sparse rule (core/entmax.py) needs the logits
themselves, so it works on chunks of query rows (memory O(chunk * Nk)); the joint variant's dense part is one fused
scaled_dot_product_attention call. No Nq x Nk matrix is formed.
"""
import torch
import torch.nn.functional as F

from .entmax import Workspace, rule_root

CPU_BLOCK = 1 << 18  # fp32 logits per chunk on the CPU (1 MiB): the rule's passes stay in cache


def _row_chunk(q: torch.Tensor, keys: int, chunk: int | None) -> int:
    """Query rows per chunk: as given, else on the CPU about CPU_BLOCK logits (at least 16 rows), elsewhere 1024."""
    if chunk is not None:
        return chunk
    if q.device.type != "cpu":
        return 1024
    return max(16, CPU_BLOCK // max(1, q.shape[0] * q.shape[1] * keys))


def _mask_rows(mask: torch.Tensor | None, rows: slice, keys: slice = slice(None)) -> torch.Tensor | None:
    """The part of a 4-D additive mask for these query rows and keys (broadcast dims stay broadcast)."""
    if mask is None:
        return None
    return mask[:, :, rows if mask.shape[2] > 1 else slice(None), keys if mask.shape[3] > 1 else slice(None)]


def _logits(q: torch.Tensor, k_scaled: torch.Tensor, mask: torch.Tensor | None, work: Workspace) -> torch.Tensor:
    """fp32 logits q k^T (k already scaled, fp32) plus the mask, into the workspace."""
    scores = torch.matmul(q.float(), k_scaled.transpose(-1, -2), out=work.get("s", q, k_scaled.shape[2]))
    return scores if mask is None else scores.add_(mask)


def pladis_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, lam: float, alpha: float,
                     mask: torch.Tensor | None = None, residual_only: bool = False,
                     chunk: int | None = None) -> torch.Tensor:
    """PLADIS (arXiv 2503.07677): (lam * entmax_alpha(S) + (1 - lam) * softmax(S)) V with S = q k^T * scale, in fp32,
    query rows in chunks. residual_only gives lam * (entmax_alpha(S) - softmax(S)) V, the change to plain attention."""
    k_scaled, v32, work = k.float() * scale, v.float(), Workspace()
    b, h, n = q.shape[:3]  # out's memory is (B, N, H, D), so going back to ComfyUI's (B, N, H*D) is a view
    out = torch.empty((b, n, h, v.shape[-1]), dtype=v.dtype, device=v.device).transpose(1, 2)
    step = _row_chunk(q, k.shape[2], chunk)
    for start in range(0, q.shape[2], step):
        rows = slice(start, start + step)
        scores = _logits(q[:, :, rows], k_scaled, _mask_rows(mask, rows), work)
        root, squared = rule_root(scores, alpha, work)
        weights = torch.softmax(scores, dim=-1, out=work.get("d", scores)).mul_(-lam if residual_only else 1 - lam)
        if squared:
            weights.addcmul_(root, root, value=lam / 4)
        else:
            weights.add_(root, alpha=lam)
        out[:, :, rows] = torch.matmul(weights, v32, out=work.get("o", weights, v.shape[-1]))
    return out


def _image_ranges(n: int, text: slice) -> list[slice]:
    """The rows outside the text tokens, as one or two ranges."""
    return [r for r in (slice(0, text.start), slice(text.stop, n)) if r.start < r.stop]


def _cpu_flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether SDPA's CPU flash kernel, which also returns each row's log-sum-exp, takes these inputs."""
    return (q.device.type == "cpu" and hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu")
            and q.dtype == k.dtype == v.dtype and q.shape[-1] == k.shape[-1] == v.shape[-1]
            and all(t.stride(-1) == 1 for t in (q, k, v)))


def _plain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, text: slice,
                     mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Plain attention from one fused SDPA call in the input dtype, and per row either the fp32 log-sum-exp of its
    logits (CPU flash kernel; flag True) or its softmax mass on the text keys (flag False): a value channel that is 1
    on the text keys, with a zero channel on q and k, gives that mass as its output."""
    mask = None if mask is None else mask.to(q.dtype)
    if _cpu_flash(q, k, v):
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, attn_mask=mask, scale=scale)
        return out, lse.unsqueeze(-1), True
    marker = v.new_zeros(v.shape[:3] + (1,))
    marker[:, :, text] = 1
    both = F.scaled_dot_product_attention(F.pad(q, (0, 1)), F.pad(k, (0, 1)), torch.cat([v, marker], dim=-1),
                                          attn_mask=mask, scale=scale)
    return both[..., :-1], both[..., -1:].float(), False


def joint_pladis_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, lam: float, alpha: float,
                           text: slice, mask: torch.Tensor | None = None, residual_only: bool = False,
                           chunk: int | None = None) -> torch.Tensor:
    """PLADIS (arXiv 2503.07677) on joint (text + image) attention, our variant: the text-key part of each image row,
    as a distribution over the text keys, becomes lam * entmax_alpha + (1 - lam) * softmax of those logits, keeping the
    row's total text mass m; image-key weights and text rows are unchanged. That is plain attention plus
    lam * (m * entmax_alpha(S_txt) - P_txt) V_txt, P_txt the plain weights on the text keys (residual_only: that
    change alone). Plain attention is one fused SDPA call; the change is computed in fp32 on the image rows x text
    keys block, rows in chunks."""
    plain, row_stat, is_lse = _plain_attention(q, k, v, scale, text, mask)
    out = torch.zeros_like(plain) if residual_only else plain  # in the flash kernel's layout: no copy either way
    if text.start >= text.stop:
        return out
    k_text, v_text, work = k[:, :, text].float() * scale, v[:, :, text].float(), Workspace()
    step = _row_chunk(q, text.stop - text.start, chunk)
    for image in _image_ranges(q.shape[2], text):
        for start in range(image.start, image.stop, step):
            rows = slice(start, min(start + step, image.stop))
            scores = _logits(q[:, :, rows], k_text, _mask_rows(mask, rows, text), work)
            if is_lse:  # the rows shifted by their log-sum-exp: exp gives the plain weights
                root, squared = rule_root(scores, alpha, work, shift=row_stat[:, :, rows])
                plain_weights = torch.exp(scores, out=work.get("d", scores))
                mass = plain_weights.sum(-1, keepdim=True)
            else:
                root, squared = rule_root(scores, alpha, work)
                mass = row_stat[:, :, rows]
                plain_weights = torch.softmax(scores, dim=-1, out=work.get("d", scores)).mul_(mass)
            if squared:
                minus = plain_weights.addcmul_(root.mul_(mass.sqrt() / 2), root, value=-1)
            else:
                minus = plain_weights.addcmul_(root, mass, value=-1)
            change = torch.matmul(minus if mask is None else minus.nan_to_num_(), v_text,
                                  out=work.get("o", minus, v.shape[-1]))
            out[:, :, rows].sub_(change, alpha=lam)
    return out

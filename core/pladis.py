"""PLADIS kernels (Kim & Sim, arXiv 2503.07677): sparsemax, alpha-entmax and the sparse/dense attention extrapolation.

All attention here takes q (B, H, Nq, D), k and v (B, H, Nk, D). The sparse rule needs the logits themselves, so it
works on chunks of query rows (memory O(chunk * Nk)); the joint variant's dense part is one fused
scaled_dot_product_attention call. No Nq x Nk matrix is formed. The exact rules (by sorting) are the reference; the
attention kernels reach the same weights by Newton steps on the threshold (sorting only rows those leave unsettled).
"""
import torch
import torch.nn.functional as F

SPARSEMAX = "sparsemax"
ENTMAX15 = "entmax1.5"
NEWTON_STEPS = {1.5: 3, 2.0: 5}  # rows still unsettled after these (rare but for very flat rows) are sorted
CPU_BLOCK = 1 << 18  # fp32 logits per chunk on the CPU (1 MiB): the rule's passes stay in cache


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


class Workspace:
    """fp32 work tensors reused from chunk to chunk: fresh megabyte-sized tensors in a loop cost page faults on the
    CPU (several times the arithmetic of a pass)."""

    def __init__(self):
        self.flat: dict[str, torch.Tensor] = {}

    def get(self, name: str, like: torch.Tensor, last: int | None = None) -> torch.Tensor:
        """A contiguous fp32 tensor of like's shape (its last dim replaced by `last`), on like's device."""
        shape = like.shape[:-1] + (like.shape[-1] if last is None else last,)
        size = shape.numel()
        buffer = self.flat.get(name)
        if buffer is None or buffer.numel() < size or buffer.device != like.device:
            buffer = self.flat[name] = torch.empty(size, dtype=torch.float32, device=like.device)
        return buffer[:size].view(shape)


def _above(s: torch.Tensor, threshold: torch.Tensor, out: torch.Tensor,
           scratch: torch.Tensor) -> torch.Tensor:
    """out = [s - threshold]_+; returns each row's count of positive entries (scratch: same shape as s)."""
    torch.sub(s, threshold, out=out).relu_()
    return torch.sign(out, out=scratch).sum(-1, keepdim=True)


def _entmax15_newton(s: torch.Tensor, work: Workspace, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """1.5-entmax of fp32 rows s with maximum 0 (into work "x") and the rows left unsettled. In units of s the
    threshold u solves sum [s - u]_+^2 = 4. Newton steps on the root of that sum (convex, so they stay below u) start
    at -2 and
    find the support S; the threshold for S is then exact iff no logit lies between the two (checked by the sums:
    each logit between them is missed by its distance to the new threshold)."""
    x = work.get("x", s)
    u = s.new_full(s.shape[:-1] + (1,), -2.0)
    for _ in range(steps):
        torch.sub(s, u, out=x).relu_()
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        u = torch.addcdiv(u, norm * (norm - 2), x.sum(-1, keepdim=True))
    torch.sub(s, u, out=x).relu_()
    total, excess = x.sum(-1, keepdim=True), torch.linalg.vector_norm(x, dim=-1, keepdim=True) ** 2 - 4
    count = x.sign_().sum(-1, keepdim=True)
    step = excess / (total + torch.addcmul(total * total, count, excess, value=-1).sqrt_())
    torch.sub(s, u + step, out=x).relu_()
    missed = torch.addcmul(x.sum(-1, keepdim=True) - total, count, step)
    return x.square_().mul_(0.25), ~(missed.abs() <= 1e-4 * total)


def _sparsemax_newton(s: torch.Tensor, work: Workspace, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparsemax of fp32 rows s with maximum 0 and the rows left unsettled: from -1, each step is the exact threshold
    (sum - 1) / count of the current support (Michelot); settled when a step keeps the support's size."""
    p, scratch = work.get("x", s), work.get("c", s)
    u = ((s.sum(-1, keepdim=True) - 1) / s.shape[-1]).clamp_min_(-1)
    count = _above(s, u, p, scratch)
    previous = torch.full_like(count, -1.0)
    for _ in range(steps):
        u = u + (p.sum(-1, keepdim=True) - 1) / count
        count, previous = _above(s, u, p, scratch), count
    return p, (count != previous) | ~torch.isfinite(u)


def rule_weights(scores: torch.Tensor, alpha: float,
                 work: Workspace | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """sparse_weights of fp32 scores and each row's maximum, faster: the rows are shifted in place to a maximum of 0
    (softmax and the rules do not change), then alpha 1.5 and 2 by Newton steps on the threshold, the rows those
    leave unsettled (and any not finite) by the sorted rule; other alphas by bisection. With a workspace the weights
    live in it (valid until its next use)."""
    peak = scores.amax(-1, keepdim=True).clamp_min_(torch.finfo(scores.dtype).min)
    scores.sub_(peak)
    if alpha not in NEWTON_STEPS:
        return sparse_weights(scores, alpha), peak
    newton = _entmax15_newton if alpha == 1.5 else _sparsemax_newton
    p, unsettled = newton(scores, work or Workspace(), NEWTON_STEPS[alpha])
    rows = unsettled.reshape(-1).nonzero().squeeze(1)
    if rows.numel():
        p.view(-1, p.shape[-1])[rows] = sparse_weights(scores.reshape(-1, scores.shape[-1])[rows], alpha)
    return p, peak


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
    out = torch.empty(q.shape[:-1] + (v.shape[-1],), dtype=v.dtype, device=v.device)
    step = _row_chunk(q, k.shape[2], chunk)
    for start in range(0, q.shape[2], step):
        rows = slice(start, start + step)
        scores = _logits(q[:, :, rows], k_scaled, _mask_rows(mask, rows), work)
        dense = torch.softmax(scores, dim=-1, out=work.get("d", scores))
        sparse = rule_weights(scores, alpha, work)[0]
        weights = dense.sub_(sparse).mul_(-lam) if residual_only else dense.lerp_(sparse, lam)
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
    out = torch.zeros_like(plain) if residual_only else plain.contiguous()
    if text.start >= text.stop:
        return out
    k_text, v_text, work = k[:, :, text].float() * scale, v[:, :, text].float(), Workspace()
    step = _row_chunk(q, text.stop - text.start, chunk)
    for image in _image_ranges(q.shape[2], text):
        for start in range(image.start, image.stop, step):
            rows = slice(start, min(start + step, image.stop))
            scores = _logits(q[:, :, rows], k_text, _mask_rows(mask, rows, text), work)
            sparse, peak = rule_weights(scores, alpha, work)
            if is_lse:
                plain_weights = scores.sub_(row_stat[:, :, rows] - peak).exp_()
                mass = plain_weights.sum(-1, keepdim=True)
            else:
                mass = row_stat[:, :, rows]
                plain_weights = torch.softmax(scores, dim=-1, out=work.get("d", scores)).mul_(mass)
            minus = plain_weights.addcmul_(sparse, mass, value=-1)
            change = torch.matmul(minus if mask is None else minus.nan_to_num_(), v_text,
                                  out=work.get("o", minus, v.shape[-1]))
            out[:, :, rows].sub_(change, alpha=lam)
    return out

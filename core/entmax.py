"""Sparse attention rules for PLADIS (Kim & Sim, arXiv 2503.07677): sparsemax and alpha-entmax of each row of the last
dim, exact by sorting (the reference), and the fast form the attention kernels use: Newton steps on the threshold in
a few whole-block passes, sorting only rows those leave unsettled."""
import torch

NEWTON_STEPS = {1.5: 4, 2.0: 5}  # rows still unsettled after these (rare) are sorted


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


def _above(s: torch.Tensor, threshold: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out = [s - threshold]_+ (clamp_min_ is the CPU's fastest in-place relu)."""
    return torch.sub(s, threshold, out=out).clamp_min_(0)


def _entmax15_newton(s: torch.Tensor, top: torch.Tensor, work: Workspace,
                     steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x = [s - u]_+ with sum x^2 = 4 (1.5-entmax of the fp32 rows s, maxima `top`, is x^2 / 4; into work "x"), and
    the rows left unsettled. Newton steps on ||[s - u]_+|| = 2 (convex in u, so they stay below u) start at top - 2
    and find the support S; the threshold for S is then exact iff no logit lies between the two (checked by the sums:
    each logit between them is missed by its distance to the new threshold)."""
    x, scratch = work.get("x", s), work.get("c", s)
    u = top - 2
    for _ in range(steps):
        norm = torch.linalg.vector_norm(_above(s, u, x), dim=-1, keepdim=True)
        u = torch.addcdiv(u, norm * (norm - 2), x.sum(-1, keepdim=True))
    _above(s, u, x)
    total, excess = x.sum(-1, keepdim=True), torch.linalg.vector_norm(x, dim=-1, keepdim=True) ** 2 - 4
    count = torch.sign(x, out=scratch).sum(-1, keepdim=True)
    step = excess / (total + torch.addcmul(total * total, count, excess, value=-1).sqrt_())
    _above(s, u + step, x)
    missed = torch.addcmul(x.sum(-1, keepdim=True) - total, count, step)
    return x, ~(missed.abs() <= 1e-4 * total)


def _sparsemax_newton(s: torch.Tensor, top: torch.Tensor, work: Workspace,
                      steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparsemax of the fp32 rows s with maxima `top` (into work "x") and the rows left unsettled: from a threshold
    below the exact one, each step is the exact threshold (sum - 1) / count of the current support (Michelot); settled
    when a step keeps the support's size."""
    p, scratch = work.get("x", s), work.get("c", s)
    u = torch.maximum((s.sum(-1, keepdim=True) - 1) / s.shape[-1], top - 1)
    count = torch.sign(_above(s, u, p), out=scratch).sum(-1, keepdim=True)
    previous = torch.full_like(count, -1.0)
    for _ in range(steps):
        u = u + (p.sum(-1, keepdim=True) - 1) / count
        count, previous = torch.sign(_above(s, u, p), out=scratch).sum(-1, keepdim=True), count
    return p, (count != previous) | ~torch.isfinite(u)


def rule_root(scores: torch.Tensor, alpha: float, work: Workspace | None = None,
              shift: torch.Tensor | None = None) -> tuple[torch.Tensor, bool]:
    """alpha-entmax of the fp32 rows `scores` as (x, squared): the weights are x * x / 4 when squared (alpha 1.5),
    else x. The rows are shifted in place by `shift` (default: their maximum, which keeps the fp32 rules as exact as
    the sorted ones; the rules and softmax do not change). Alpha 1.5 and 2 by Newton steps on the threshold, the rows
    those leave unsettled (and any not finite) by the sorted rule; other alphas by bisection. With a workspace, x
    lives in it (valid until its next use)."""
    peak = scores.amax(-1, keepdim=True).clamp_min_(torch.finfo(scores.dtype).min)
    scores.sub_(peak if shift is None else shift)
    if alpha not in NEWTON_STEPS:
        return sparse_weights(scores, alpha), False
    squared = alpha == 1.5
    newton = _entmax15_newton if squared else _sparsemax_newton
    top = torch.zeros_like(peak) if shift is None else peak - shift
    x, unsettled = newton(scores, top, work or Workspace(), NEWTON_STEPS[alpha])
    rows = unsettled.reshape(-1).nonzero().squeeze(1)
    if rows.numel():
        exact = sparse_weights(scores.reshape(-1, scores.shape[-1])[rows], alpha)
        x.view(-1, x.shape[-1])[rows] = exact.sqrt_().mul_(2) if squared else exact
    return x, squared


def rule_weights(scores: torch.Tensor, alpha: float, work: Workspace | None = None) -> torch.Tensor:
    """sparse_weights of fp32 scores by rule_root (the fast form; the rows are shifted in place)."""
    x, squared = rule_root(scores, alpha, work)
    return x.square().mul_(0.25) if squared else x

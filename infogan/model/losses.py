"""The adversarial losses and the information (mutual-information lower bound) loss.

The information loss is the negative of the variational lower bound L_I(G, Q) of InfoGAN, eq. (4),
up to the constant H(c):
  - categorical codes: cross-entropy between Q's logits and the sampled class (no softmax first);
  - continuous codes: Gaussian negative log-likelihood of the sampled value under Q's mean and
    log-scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from infogan.model.networks import CodeParams

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
# Keeps a confident Q from dividing by ~0 early in training; exp(-5) is far below any code's spread.
MIN_LOG_SCALE = -5.0


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """D's adversarial loss: 'bce' is the original GAN objective, 'hinge' the SN-GAN one."""
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """G's adversarial loss: non-saturating for 'bce', -D(G(z)) for 'hinge'."""
    if kind == "hinge":
        return -fake_logits.mean()
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class InfoLoss(NamedTuple):
    categorical: torch.Tensor  # cross-entropy summed over the categorical codes, batch mean, nats
    continuous: torch.Tensor  # Gaussian NLL summed over the continuous codes, batch mean, nats
    continuous_each: torch.Tensor  # (n_continuous,): each continuous code's Gaussian NLL, batch mean, nats


def categorical_nll(logits: torch.Tensor, classes: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """Cross-entropy of each categorical code, (B, sum(sizes)) logits vs (B, n_codes) -> (n_codes,)."""
    if len(set(sizes)) == 1:  # equal sizes: one fused call over (B * n_codes, K)
        k = sizes[0]
        per_code = F.cross_entropy(logits.reshape(-1, k), classes.reshape(-1), reduction="none")
        return per_code.view(-1, len(sizes)).mean(0)
    chunks = logits.split(list(sizes), dim=1)
    return torch.stack([F.cross_entropy(chunk, classes[:, i]) for i, chunk in enumerate(chunks)])


def gaussian_nll(mean: torch.Tensor, log_scale: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """-log N(value; mean, exp(log_scale)^2), elementwise, (B, n) -> (n,) averaged over the batch."""
    log_scale = log_scale.clamp(min=MIN_LOG_SCALE)
    z = (value - mean) * torch.exp(-log_scale)
    return (0.5 * z.square() + log_scale + HALF_LOG_2PI).mean(0)


def information_loss(
    q: CodeParams, categorical: torch.Tensor, continuous: torch.Tensor, categorical_sizes: tuple[int, ...]
) -> InfoLoss:
    """The two terms of -L_I for the whole code (the codes are independent, so their terms add up);
    zero for a code type the model lacks."""
    zero = q.categorical_logits.new_zeros(())
    cat = categorical_nll(q.categorical_logits, categorical, categorical_sizes).sum() if categorical_sizes else zero
    each = zero.new_zeros(0)  # one NLL per continuous code: none here
    if continuous.shape[1]:
        each = gaussian_nll(q.continuous_mean, q.continuous_log_scale, continuous)
    return InfoLoss(cat, each.sum(), each)


def categorical_consistency(target_logits: torch.Tensor, logits: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """KL(p_target || p) per categorical code, summed over codes, batch mean; the target is held
    fixed (no gradient), so only `logits` (Q on the transformed images) is pulled towards it."""
    total = logits.new_zeros(())
    for target, chunk in zip(
        target_logits.detach().split(list(sizes), dim=1), logits.split(list(sizes), dim=1), strict=True
    ):
        total = total + F.kl_div(
            F.log_softmax(chunk.float(), 1), F.log_softmax(target.float(), 1), log_target=True, reduction="batchmean"
        )
    return total


def categorical_self_label(
    target_logits: torch.Tensor, logits: torch.Tensor, sizes: tuple[int, ...], threshold: float
) -> torch.Tensor:
    """SCAN's self-labelling (Van Gansbeke et al., ECCV 2020), per categorical code, summed over
    codes: the cross-entropy of `logits` (Q on the transformed images) against the class Q gives the
    untransformed image (`target_logits`, held fixed), over the rows where that class's probability
    is at least `threshold`. Each class present among them weighs the same (a row weighs one over its
    class's count), so the frequent classes do not grow at the rare ones' cost. 0 where no row is
    confident. No host synchronisation: the rows are masked, not selected."""
    total = logits.new_zeros((), dtype=torch.float32)
    for target, chunk in zip(
        target_logits.detach().split(list(sizes), dim=1), logits.split(list(sizes), dim=1), strict=True
    ):
        confidence, label = target.float().softmax(1).max(1)  # (B,) each
        confident = (confidence >= threshold).float()
        counts = torch.zeros(chunk.shape[1], device=chunk.device).index_add_(0, label, confident)
        weight = confident / counts.clamp_min(1.0)[label]  # (B,): 0 for a row that is not confident
        entropy = F.cross_entropy(chunk.float(), label, reduction="none")
        total = total + (weight * entropy).sum() / weight.sum().clamp_min(1e-12)
    return total


def categorical_virtual_adversarial(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    target_logits: torch.Tensor,
    sizes: tuple[int, ...],
    radius: torch.Tensor,
) -> torch.Tensor:
    """Virtual adversarial training (Miyato et al., TPAMI 2018) as IMSAT uses it (Hu et al., ICML
    2017): `categorical_consistency` between the classes `target_logits` (held fixed) and
    `logits_of(images + r)`, where each image's r has L2 norm `radius` (B,) and points where the
    classes change fastest. That direction is one power iteration's: the gradient, with respect to
    a random perturbation of the same norm, of the divergence it makes (a finite step as large as r,
    rather than a tiny one, which bf16 would round away). Only the last divergence has a graph to
    the parameters; the direction is found without one."""
    shape = (-1,) + (1,) * (images.dim() - 1)
    radius = radius.reshape(shape).to(images.dtype)

    def unit(v: torch.Tensor) -> torch.Tensor:
        return v / v.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(shape)

    probe = (radius * unit(torch.randn_like(images))).requires_grad_(True)
    divergence = categorical_consistency(target_logits, logits_of(images.detach() + probe), sizes)
    (gradient,) = torch.autograd.grad(divergence, probe)
    perturbation = radius * unit(gradient.to(images.dtype))
    return categorical_consistency(target_logits, logits_of(images + perturbation), sizes)


def categorical_entropies(logits: torch.Tensor, sizes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(H(c | x), H(c)) in nats, each summed over the categorical codes: the batch mean of each
    image's entropy, and the entropy of the batch-mean prediction. IMSAT (Hu et al., ICML 2017)
    lowers the first (confident classes) and raises the second (classes used equally often)."""
    conditional = logits.new_zeros((), dtype=torch.float32)
    marginal = logits.new_zeros((), dtype=torch.float32)
    for chunk in logits.split(list(sizes), dim=1):
        log_p = F.log_softmax(chunk.float(), 1)  # (B, K)
        conditional = conditional - (log_p.exp() * log_p).sum(1).mean()
        mean = log_p.exp().mean(0).clamp_min(1e-12)  # (K,)
        marginal = marginal - (mean * mean.log()).sum()
    return conditional, marginal


def categorical_mutual_information(
    logits: torch.Tensor, other_logits: torch.Tensor, sizes: tuple[int, ...]
) -> torch.Tensor:
    """I(c; c') in nats, summed over the categorical codes, between Q's class c of each image and c'
    of its transformed copy, estimated from the batch as in IIC (Ji, Henriques and Vedaldi, ICCV
    2019): the joint P = mean_i p_i p'_i^T, symmetrised. I(c; c') = H(c) - H(c | c') is large when the
    two views get the same class (consistency) and the classes are used equally often (the marginal
    entropy, which a consistency term alone lacks). At most ln K per K-class code. Both views get
    gradients."""
    total = logits.new_zeros((), dtype=torch.float32)
    for chunk, other in zip(logits.split(list(sizes), dim=1), other_logits.split(list(sizes), dim=1), strict=True):
        p, q = chunk.float().softmax(1), other.float().softmax(1)  # (B, K) each
        joint = p.t() @ q / p.shape[0]  # (K, K)
        joint = ((joint + joint.t()) / 2).clamp_min(1e-12)
        marginal = joint.sum(1)
        total = total + (joint * (joint.log() - marginal.log()[:, None] - marginal.log()[None, :])).sum()
    return total


def continuous_dependence(mean: torch.Tensor) -> torch.Tensor:
    """How far the continuous codes Q reads from a batch of images are from independent, as the
    prior's are: the mean over pairs of codes of the squared correlation between their values, plus
    that between their squared deviations from the batch mean. `mean`: (B, n_continuous), Q's means.

    The first part is 0 for any rotation of independent, equally scaled codes, but not where one
    code's factor leaks into another's (a shear); the second, a fourth-moment one, is also not 0 for a
    rotation of independent codes that are not Gaussian (a uniform prior's are not). No factor is
    named: it asks only that the codes of real images be independent of one another. Factors that
    already correlate a little can read least dependent mixed: `continuous_class_dependence`.
    """
    n_continuous = mean.shape[1]
    if n_continuous < 2:
        return mean.new_zeros((), dtype=torch.float32)
    centred = mean.float() - mean.float().mean(0)
    i, j = torch.triu_indices(n_continuous, n_continuous, offset=1)
    total = centred.new_zeros(())
    for moment in (centred, centred.square()):
        # unit columns, so that moment.T @ moment is a correlation matrix
        moment = F.normalize(moment - moment.mean(0), dim=0, eps=1e-8)
        total = total + (moment.t() @ moment)[i, j].square().mean()
    return total


def continuous_cross_reading(mean: torch.Tensor, moved_mean: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """How far Q's reading of one continuous code moves when only the other continuous codes change:
    the mean over rows of the squared difference, in the code's units, between Q's mean of code
    `kept` (B,) read from an image, `mean` (B, n_continuous), and from the image drawn from the same
    latent with the other codes drawn anew, `moved_mean` (`LatentCodes.redraw_other_continuous`).

    Q can read a code partly through a change another code makes (a width code through a lean, where
    the width code also leans the digits a little); the information term then pays G for making that
    change with both codes. Asking Q's reading of each code to stay where it is while the others move
    takes that pay away. No factor is named: it asks only that each code be read from its own change.
    """
    pick = kept[:, None]
    return (mean.float().gather(1, pick) - moved_mean.float().gather(1, pick)).square().mean()


def continuous_class_dependence(mean: torch.Tensor, classes: torch.Tensor, n_classes: int) -> torch.Tensor:
    """`continuous_dependence` within each class: its value over the rows of each class with 3 rows or
    more, weighted by their count, over all the rows. `mean`: (B, n_continuous), Q's means; `classes`:
    (B,) each row's class (Q's own reading of the categorical code, no label).

    Two independent factors whose spreads differ from class to class (the 1s' slant spreads far
    more than their width, the 0s' about as much) are independent within every class only along their own axes: a
    rotation of them is correlated within the classes where their spreads differ, even where it is
    uncorrelated over all classes. Over all classes the two moments of `continuous_dependence` can even
    be lowest for a mix: on the MNIST training digits, for slant and width rotated by 45 degrees (the
    measures standardised; benchmarks/factor_measures.py --rotations). Within classes, a class's
    spreads single out its axes. No factor is named: it asks only that the codes be independent
    within each class, as the prior draws them for every class.
    """
    total, counted = mean.new_zeros((), dtype=torch.float32), 0
    for k in range(n_classes):
        rows = classes == k
        count = int(rows.sum())
        if count >= 3:
            total = total + count * continuous_dependence(mean[rows])
            counted += count
    return total / max(counted, 1)


def plane_turn(n: int, i: int, j: int, degrees: float) -> torch.Tensor:
    """The (n, n) rotation that turns codes i and j by `degrees` in their plane and leaves the rest."""
    turn, t = torch.eye(n), math.radians(degrees)
    turn[i, i] = turn[j, j] = math.cos(t)
    turn[i, j], turn[j, i] = -math.sin(t), math.sin(t)
    return turn


def least_dependent_turn(
    mean: torch.Tensor, classes: torch.Tensor, n_classes: int, step: float = 1.0
) -> tuple[torch.Tensor, list[float]]:
    """The turn of the continuous codes that leaves Q's readings `mean` (N, n_continuous) of real images
    least dependent within Q's classes `classes` (N,) (`continuous_class_dependence`): for each pair of
    codes in turn, the angle from -45 to 45 degrees, every `step`, that reads least (the smallest turn
    among equals; 90 degrees more only swaps the pair), applied before the next pair is searched.
    Returns the (n, n) rotation T, turned readings being `mean @ T.T`, and each pair's angle.

    The information term pays a turn of two codes as it pays them (for a Gaussian reader of equal
    spread, exactly), so nothing in it picks the pair that follows the data's independent factors; two
    factors whose spreads differ from class to class are independent within every class only along
    their own axes."""
    n = mean.shape[1]
    turn, angles = torch.eye(n), []
    mean = mean.float().cpu()
    classes = classes.cpu()
    candidates = torch.arange(-45.0, 45.0, step)
    for i in range(n):
        for j in range(i + 1, n):
            scores = [
                float(continuous_class_dependence(mean @ plane_turn(n, i, j, float(a)).T, classes, n_classes))
                for a in candidates
            ]
            least = min(scores)
            angle = min((float(a) for a, v in zip(candidates, scores, strict=True) if v == least), key=abs)
            pair = plane_turn(n, i, j, angle)
            mean, turn = mean @ pair.T, pair @ turn
            angles.append(angle)
    return turn, angles


def least_mixed_turn(
    generator: Callable[[torch.Tensor], torch.Tensor],
    vector: torch.Tensor,
    n_continuous: int,
    epsilon: float = 1.0,
    bound: float = 15.0,
    step: float = 0.5,
) -> tuple[torch.Tensor, list[float]]:
    """The turn of the continuous codes at which they act most separately on the image: for each pair
    of codes in turn, the angle from -`bound` to `bound` degrees, every `step`, at which the codes'
    mixed second derivative over `vector` (`continuous_mixed_derivatives`, steps of `epsilon`) is least
    (the smallest turn among equals), applied before the next pair is searched. Returns the (n, n)
    rotation T, the new codes being T @ the old (as `turn_slice` takes it), and each pair's angle.

    Under an isotropic Gaussian prior a turn of the codes changes neither the images G draws nor what Q
    can read, so the objective leaves it free; two factors that each act on the image in their own
    way mix their effects in a turned pair, which makes the mixed derivative grow (the Hessian
    penalty's argument, Peebles et al., ECCV 2020). No factor is named and no label read."""
    first = vector.shape[1] - n_continuous
    turn, angles = torch.eye(n_continuous), []
    candidates = torch.arange(-bound, bound + step / 2, step)

    def mixed(trial: torch.Tensor) -> float:
        def turned(v: torch.Tensor) -> torch.Tensor:  # G as turn_slice leaves it: the old codes are trial.T @ new
            return generator(torch.cat([v[:, :first], v[:, first:] @ trial.to(v)], dim=1))

        return float(continuous_mixed_derivatives(code_effects(turned, vector, n_continuous, epsilon=epsilon)))

    with torch.no_grad():
        for i in range(n_continuous):
            for j in range(i + 1, n_continuous):
                scores = [mixed(plane_turn(n_continuous, i, j, float(a)) @ turn) for a in candidates]
                least = min(scores)
                angle = min((float(a) for a, v in zip(candidates, scores, strict=True) if v == least), key=abs)
                turn = plane_turn(n_continuous, i, j, angle) @ turn
                angles.append(angle)
    return turn, angles


def continuous_marginal_distance(mean: torch.Tensor, prior: str) -> torch.Tensor:
    """How far each continuous code Q reads from a batch of images is from spread as the prior
    spreads it: the mean over codes of the squared 1-D Wasserstein-2 distance between the batch's
    values and the prior, the mean squared gap between the sorted values and the prior's quantiles
    at (i + 1/2) / B. `mean`: (B, n_continuous), Q's means; `prior`: 'uniform' (on [-1, 1]) or
    'gaussian' (N(0, 1)).

    0 where the values fall as a draw from the prior would; 1/3 for a uniform code read as 0 on every
    image (a code the images do not carry). No factor is named: it asks only that each code's
    readings of real images cover its prior, as a generator that draws the data from the prior gives.
    """
    batch, n_continuous = mean.shape
    if n_continuous == 0:  # no code started yet (improved.continuous_start)
        return mean.new_zeros((), dtype=torch.float32)
    levels = (torch.arange(batch, device=mean.device, dtype=torch.float32) + 0.5) / batch
    quantiles = levels * 2 - 1 if prior == "uniform" else torch.special.ndtri(levels)
    values, _ = mean.float().sort(dim=0)
    return (values - quantiles[:, None]).square().mean()


class CodeEffects(NamedTuple):
    """The continuous codes' effects on the image at a set of latents, by central differences
    (`code_effects`), in float32 at least: `slopes` (S, codes, B, C, H, W), dG/dc_k of each code compared;
    `mixed` (S, pairs, B, C, H, W), d2G / (dc_i dc_j) of each pair i < j, in the order of `pairs`."""

    slopes: torch.Tensor
    mixed: torch.Tensor
    pairs: list[tuple[int, int]]


def code_effects(
    generator: Callable[[torch.Tensor], torch.Tensor],
    vectors: torch.Tensor,
    n_continuous: int,
    started: int | None = None,
    epsilon: float = 0.1,
) -> CodeEffects:
    """The first `started` continuous codes' effects (all when None) at `vectors` (S, B, latent_dim),
    or (B, latent_dim) taken as S = 1, whose last n_continuous columns are the continuous codes: one
    generator call, whose batch-norm statistics are those of all its images.

    With two codes or more, the four images G(v +- epsilon e_i +- epsilon e_j) of each pair i < j
    give its mixed derivative, (uu - ud - du + dd) / (4 epsilon^2), and each code's slope, (uu + ud
    - du - dd) / (4 epsilon) for c_i, the central difference averaged over c_j +- epsilon; a code in
    several pairs takes the mean of its slopes. So the terms that read slopes and those that read the
    mixed derivative share 4 passes over B inputs per pair and S. With one code: G(v +- epsilon e_0),
    2 passes, and no pair; with none, no pass."""
    vectors = vectors if vectors.dim() == 3 else vectors[None]
    (n_sets, batch, width), first = vectors.shape, vectors.shape[-1] - n_continuous
    compared = n_continuous if started is None else started
    pairs = [(i, j) for i in range(compared) for j in range(i + 1, compared)]
    if compared < 1:
        empty = vectors.new_zeros(n_sets, 0, batch, 1, 1, 1, dtype=torch.float32)
        return CodeEffects(empty, empty, pairs)
    if not pairs:  # one code: its two steps
        slope = code_changes(generator, vectors, n_continuous, 1, epsilon) / (2 * epsilon)  # (S, 1, B, C, H, W)
        return CodeEffects(slope, slope.new_zeros(n_sets, 0, *slope.shape[2:]), pairs)
    steps = vectors.new_zeros(len(pairs), 4, width)
    for row, (i, j) in enumerate(pairs):
        for corner, (a, b) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
            steps[row, corner, first + i], steps[row, corner, first + j] = a * epsilon, b * epsilon
    images = generator((vectors[:, None] + steps.flatten(0, 1)[None, :, None]).flatten(0, 2))
    images = images.to(torch.promote_types(images.dtype, torch.float32))  # bf16 differences lose the change
    images = images.unflatten(0, (n_sets, len(pairs), 4, batch))  # (S, pairs, corners, B, C, H, W)
    up_up, up_down, down_up, down_down = images.unbind(2)  # each (S, pairs, B, C, H, W)
    mixed = (up_up - up_down - down_up + down_down) / (4 * epsilon**2)
    along_i = (up_up + up_down - down_up - down_down) / (4 * epsilon)
    along_j = (up_up - up_down + down_up - down_down) / (4 * epsilon)
    slopes = []
    for code in range(compared):
        taken = [along_i[:, p] for p, (i, _) in enumerate(pairs) if i == code]
        taken += [along_j[:, p] for p, (_, j) in enumerate(pairs) if j == code]
        slopes.append(torch.stack(taken).mean(dim=0))
    return CodeEffects(torch.stack(slopes, dim=1), mixed, pairs)


def continuous_mixed_derivatives(effects: CodeEffects, relative: bool = False, floor: float = 1e-3) -> torch.Tensor:
    """The mean over pairs of continuous codes and over pixels of the squared mixed second derivative
    d2 G / (dc_i dc_j), i != j, of the generated images (`code_effects`); 0 with no pair.

    The off-diagonal half of the Hessian penalty (Peebles et al., ECCV 2020): it is 0 where each code
    changes the image in a way that does not depend on the other codes' values, and a code that mixes
    two of the image's factors with another code makes it large. No factor is named: it asks only that
    the codes act separately.

    `relative`: each pair's mean square is divided by the product of the two codes' mean squared first
    derivatives dG/dc_i and dG/dc_j, each plus `floor`. A code whose whole effect is scaled down scales
    its mixed derivative and its own first derivative together, so it cannot lower this value by
    changing the image less, as it can the plain one (by the square of the scale). The floor keeps a
    code that hardly changes the image (one just started, or a model whose codes do nothing) from
    being weighed as if its every change were mixed.
    """
    if not effects.pairs:
        return effects.mixed.new_zeros(())
    terms = effects.mixed.square().transpose(0, 1).flatten(1).mean(dim=1)  # (pairs,)
    if relative:
        sizes = effects.slopes.square().transpose(0, 1).flatten(1).mean(dim=1) + floor  # (codes,)
        i, j = (torch.tensor(side, device=sizes.device) for side in zip(*effects.pairs, strict=True))
        terms = terms / (sizes[i] * sizes[j])
    return terms.mean()


def code_changes(
    generator: torch.nn.Module, vectors: torch.Tensor, n_continuous: int, compared: int, epsilon: float
) -> torch.Tensor:
    """Each of the first `compared` continuous codes' change to the image by central differences,
    G(v + epsilon e_j) - G(v - epsilon e_j), in float32 at least: (S, compared, B, C, H, W) for `vectors`
    (S, B, latent_dim) whose last n_continuous columns are the continuous codes. One generator call,
    over 2 * compared * S * B inputs."""
    first = vectors.shape[-1] - n_continuous
    codes = torch.arange(compared, device=vectors.device)
    steps = vectors.new_zeros(2 * compared, vectors.shape[-1])
    steps[2 * codes, first + codes], steps[2 * codes + 1, first + codes] = epsilon, -epsilon
    images = generator((vectors[:, None] + steps[None, :, None]).flatten(0, 2))
    images = images.to(torch.promote_types(images.dtype, torch.float32))
    images = images.unflatten(0, (vectors.shape[0], 2 * compared, vectors.shape[1]))
    return images[:, 0::2] - images[:, 1::2]


def block_directions(changes: torch.Tensor, pool: int) -> torch.Tensor:
    """Image changes (..., C, H, W) averaged over `pool` x `pool` pixel blocks, flattened and scaled to
    unit length (a change of 0 stays 0): (..., cells), for cosines between coarse effects."""
    coarse = F.avg_pool2d(changes.flatten(0, -4), pool).flatten(1)
    return F.normalize(coarse, dim=1, eps=1e-8).unflatten(0, changes.shape[:-3])


def continuous_effect_drift(
    generator: torch.nn.Module,
    held: torch.nn.Module,
    vector: torch.Tensor,
    n_continuous: int,
    codes: int,
    pool: int,
    epsilon: float = 0.1,
) -> torch.Tensor:
    """The mean over latents and over the first `codes` continuous codes of 1 - cos between each code's
    effect on the image as `generator` makes it and as `held`, a frozen copy of it, makes it: 0 where
    every code still makes the change it made when the copy was taken, whatever its size, and more as
    the change turns into another. Each effect is G(v + epsilon e_j) - G(v - epsilon e_j), averaged over
    `pool` x `pool` pixel blocks (`block_directions`: a change that only moves a little between
    neighbouring pixels, as G's drawing of a digit does while it trains, keeps its direction). `vector`:
    (B, latent_dim) generator inputs whose last n_continuous columns are the continuous codes; the codes
    after the first `codes` are held at 0 there, as they were while the copy trained. 2 passes of each
    generator over B inputs per code; no gradient reaches `held`. 0 for no codes."""
    if codes < 1:
        return vector.new_zeros(())
    first = vector.shape[-1] - n_continuous
    vector = torch.cat([vector[:, : first + codes], vector.new_zeros(vector.shape[0], n_continuous - codes)], dim=1)
    now = block_directions(code_changes(generator, vector[None], n_continuous, codes, epsilon)[0], pool)
    with torch.no_grad():
        then = block_directions(code_changes(held, vector[None], n_continuous, codes, epsilon)[0], pool)
    return (1 - (now * then).sum(-1)).mean()


def continuous_effect_overlap(effects: CodeEffects) -> torch.Tensor:
    """The mean over latents and over pairs of continuous codes of cos^2 between the two codes' effects
    on the image, dG/dc_i and dG/dc_j (`code_effects`' slopes); 0 with fewer than two codes compared.

    The orthogonal-Jacobian idea (Wei et al., OroJaR, ICCV 2021), normalised so that it asks nothing of
    how much a code changes the image: it is 0 where two codes move different pixels or move them in
    unrelated ways, and 1 where two codes turn the same change. A code that mixes in another code's
    change raises it; no factor is named. A code not started yet is held at 0 and not compared: it has
    no effect of its own to keep apart.
    """
    cosines = effect_cosines(effects)
    return cosines.square().mean() if cosines.numel() else effects.slopes.new_zeros(())


def effect_cosines(effects: CodeEffects) -> torch.Tensor:
    """The cosine between two continuous codes' effects on the image (`code_effects`' slopes), for every
    pair i < j of the codes compared at every latent: (pairs, S * B); (0, S * B) with fewer than two."""
    n_sets, compared, batch = effects.slopes.shape[:3]
    if compared < 2:
        return effects.slopes.new_zeros(0, n_sets * batch)
    slopes = F.normalize(effects.slopes.transpose(0, 1).flatten(3).flatten(1, 2), dim=2, eps=1e-8)
    cosines = torch.einsum("ibp,jbp->ijb", slopes, slopes)  # (codes, codes, S * B)
    i, j = torch.triu_indices(compared, compared, offset=1)
    return cosines[i, j]


def continuous_shared_effect(effects: CodeEffects) -> torch.Tensor:
    """The size of the mean over latents of the cosine between two continuous codes' effects on the
    image, mean over pairs of codes: |mean_b cos(dG/dc_i, dG/dc_j)| (`code_effects`' slopes).

    Two codes' effects overlap a little at any latent (they change strokes of the same digit), one way
    at some latents and the other way at others, and over many latents those overlaps cancel. A code
    that makes a share of another code's change the same way at every latent (a width code that also
    leans the digits a little) adds up instead. The squared cosine of `continuous_effect_overlap` pays
    such a small share almost nothing (a cosine of 0.05, 0.0025); this term pays it in proportion, and
    asks nothing of the overlaps that cancel. No factor is named.
    """
    cosines = effect_cosines(effects)
    return cosines.mean(dim=1).abs().mean() if cosines.numel() else effects.slopes.new_zeros(())


def continuous_class_disagreement(effects: CodeEffects, pool: int = 4) -> torch.Tensor:
    """How far each continuous code's coarse effect on the image at a latent opposes its effect at the
    same latent drawn as another class of the categorical code: max(0, -cos) between the two, mean over
    latents and codes. 0 wherever the two effects do not point opposite ways, 1 where a code moves the
    image's mass exactly the opposite way for the other class.

    `effects`: `code_effects` at two sets of latents (S = 2), the same but for their categorical
    one-hots (`LatentCodes.other_class`). A code's effect is its slope averaged over `pool` x `pool`
    pixel blocks, so that two digits' effects compare by where they move ink rather than by stroke.
    The information term alone lets a code turn one class one way and another class the other, since
    Q sees the class with the image; this asks only that a code not do that. Effects that differ but do
    not oppose cost nothing, so nothing pushes the classes' effects toward one shape. No factor is
    named. 0 with no code compared.
    """
    if effects.slopes.shape[1] < 1:
        return effects.slopes.new_zeros(())
    directions = block_directions(effects.slopes, pool)  # (2, codes, B, cells)
    cosines = (directions[0] * directions[1]).sum(dim=-1)  # (codes, B)
    return F.relu(-cosines).mean()

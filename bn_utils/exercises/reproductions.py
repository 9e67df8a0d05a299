"""Exercises of the reproductions (chapters 04-06): a training step, steps to a target accuracy,
parameter counts, learning-rate rules and ensembles."""

from __future__ import annotations

import copy
import math

import numpy as np

from .checker import (Result, Wrong, as_array, call, check_number, close, diagnose,
                           expect_shape, rng, verdict)

# --- chapter 04 -------------------------------------------------------------------------------


def check_parameter_difference(answer) -> Result:
    """Check a number: learnable parameters the 784-100-100-100-10 MLP gains with BN (300)."""
    return check_number(answer, 300, {
        600: "BN adds gamma and beta per hidden unit, but the hidden Linear layers drop their "
             "biases (beta does their job)",
        900: "the running mean and variance are buffers, not learnable parameters",
        1200: "the running mean and variance are buffers, not learnable parameters; and the "
              "hidden Linear layers drop their biases",
        0: "gamma and beta are learnable: BN adds two per hidden unit and removes one bias"},
        "the number of extra learnable parameters", tol=0.0)


def _flat(net) -> np.ndarray:
    return np.concatenate([as_array(p).ravel() for p in net.parameters()])


def _ref_grads(net, x, y):
    import torch.nn.functional as F
    from torch.autograd import grad

    loss = F.cross_entropy(net(x), y)
    return float(loss.detach()), np.concatenate([as_array(g).ravel() for g in grad(loss, list(net.parameters()))])


def _set_flat(net, flat) -> None:
    import torch

    i = 0
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.as_tensor(flat[i: i + p.numel()]).view_as(p))
            i += p.numel()


def check_sgd_step(fn) -> Result:
    """Check fn(net, x, y, lr) -> the batch's loss (a float), after one plain SGD step on
    net's parameters with the mean cross-entropy, BN in training mode."""
    import torch

    from ..nn.models import mlp
    from ..runtime import cpu_threads

    @cpu_threads(1)  # tiny tensors: a second thread only spin-waits
    def run():
        torch.manual_seed(0)
        net0 = mlp((6, 5, 5, 3), activation_name="sigmoid", norm="bn").double()
        r = rng(10)
        batches = [(torch.as_tensor(r.normal(size=(8, 6))), torch.as_tensor(r.integers(0, 3, 8)))
                   for _ in range(2)]
        lr, n = 0.5, 8
        net, ref = copy.deepcopy(net0).train(), copy.deepcopy(net0).train()
        p0 = _flat(net0)
        loss1, g1 = _ref_grads(ref, *batches[0])
        _set_flat(ref, p0 - lr * g1)
        out = call(fn, net, *batches[0], lr)
        if not net.training:
            raise Wrong("leave the network in training mode (or put it back): BN trains with "
                        "batch statistics")
        p1 = _flat(net)
        if not close(p1, p0 - lr * g1, 1e-9):
            _, g_eval = _ref_grads(copy.deepcopy(net0).eval(), *batches[0])
            diagnose(p1, {"you stepped up the gradient; SGD subtracts lr * grad": p0 + lr * g1,
                          "the learning rate is missing: p -= lr * grad": p0 - g1,
                          "use the mean loss over the batch (F.cross_entropy's default), not "
                          "the sum": p0 - lr * n * g1,
                          "the gradient was taken in eval mode; BN must use the batch's "
                          "statistics while training (net.train())": p0 - lr * g_eval})
            if close(p1, p0):
                raise Wrong("the parameters did not change: update them in place under "
                            "torch.no_grad(), e.g. p -= lr * p.grad")
            raise Wrong("the parameters after the step differ from p - lr * grad")
        if np.ndim(as_array(out)) != 0 or not close(out, loss1, 1e-9):
            raise Wrong("return the batch's loss before the step, as a number (loss.item())")
        if close(net[1].running_mean.detach(), net0[1].running_mean):
            raise Wrong("BN's running statistics did not move: run the forward pass in training mode")
        _, g2 = _ref_grads(ref, *batches[1])
        call(fn, net, *batches[1], lr)
        p2 = _flat(net)
        diagnose(p2, {"the gradients of the first step were added to the second: zero them "
                      "before each backward (net.zero_grad())": p0 - lr * g1 - lr * (g1 + g2)})
        if not close(p2, p0 - lr * g1 - lr * g2, 1e-9):
            raise Wrong("the first step is right but the second is not; does the function keep state?")
    return verdict(run)


def check_steps_to_target(fn) -> Result:
    """Check fn(steps (T,), accuracy (T,), target) -> the first step whose accuracy is >= target,
    or None when none is."""
    def run():
        steps = np.array([0, 100, 200, 400, 800])
        acc = np.array([0.1, 0.5, 0.9, 0.85, 0.95])
        out = call(fn, steps.copy(), acc.copy(), 0.9)
        if out in (2, 2.0) and not isinstance(out, bool):
            raise Wrong("that is the index of the evaluation; return the step at that index")
        if out == 800:
            raise Wrong("reaching a target means accuracy >= target; at step 200 it equals it")
        if out != 200:
            raise Wrong(f"got {out!r}; the first evaluation with accuracy >= 0.9 is at step 200")
        try:
            never = fn(steps.copy(), acc.copy(), 0.97)
        except Exception as err:  # noqa: BLE001 (the reader's code)
            raise Wrong(f"when no evaluation reaches the target, return None (your function raised "
                        f"{type(err).__name__})") from None
        if never is not None:
            raise Wrong(f"when no evaluation reaches the target, return None, not {never!r}")
    return verdict(run)


# --- chapter 05 -------------------------------------------------------------------------------

def check_conv_block_params(fn) -> Result:
    """Check fn(c_in, c_out, k, bn) -> learnable parameters of conv k x k (+ BN) as in TinyInception."""
    def run():
        for c_in, c_out, k in ((3, 16, 3), (8, 4, 1)):
            conv = c_in * c_out * k * k
            out = call(fn, c_in, c_out, k, False)
            if out != conv + c_out:
                raise Wrong("without BN the convolution has k*k*c_in*c_out weights and c_out biases")
            out = call(fn, c_in, c_out, k, True)
            mistakes = {conv + 3 * c_out: "the conv drops its bias when BN follows (beta does its job)",
                        conv + 4 * c_out: "the running mean and variance are buffers, not learnable",
                        conv + c_out: "BN adds gamma and beta per channel, and the conv drops its bias",
                        conv: "BN adds two learnable parameters per channel, gamma and beta"}
            if out in mistakes:
                raise Wrong(mistakes[out])
            if out != conv + 2 * c_out:
                raise Wrong(f"got {out!r}: count the conv weights, then what BN adds per channel")
    return verdict(run)


def check_lr_scale(fn) -> Result:
    """Check fn(lr_paper, batch_size) -> the learning rate for batch_size, scaled linearly from the
    paper's minibatches of 32."""
    def run():
        out = call(fn, 0.0045, 128)
        diagnose(out, {"a larger batch takes a larger step: multiply by batch_size / 32":
                       0.0045 * 32 / 128,
                       "that is the square-root rule; the chapter scales linearly":
                       0.0045 * 2.0,
                       "the rate must follow the batch size: multiply by batch_size / 32": 0.0045})
        if not close(out, 0.0045 * 4):
            raise Wrong("scale the paper's rate by batch_size / 32")
    return verdict(run)


def check_lr_schedule(fn) -> Result:
    """Check fn(lr0, epoch, decay_epochs) -> lr0 * 0.96 ** floor(epoch / decay_epochs)."""
    def run():
        for lr0, epoch, every in ((0.1, 10.0, 4 / 3), (0.1, 2.0, 8.0), (0.05, 16.0, 8.0)):
            out = call(fn, lr0, epoch, every)
            ref = lr0 * 0.96 ** math.floor(epoch / every)
            if close(out, ref):
                continue
            diagnose(out, {"the rate drops in steps, once per full period: use floor(epoch / "
                           "decay_epochs)": lr0 * 0.96 ** (epoch / every),
                           "count only the periods completed: floor, not ceil":
                           lr0 * 0.96 ** math.ceil(epoch / every),
                           "each period multiplies the rate by 0.96 (a 4 % cut), not by 0.04":
                           lr0 * 0.04 ** math.floor(epoch / every)})
            raise Wrong("the rate is lr0 * 0.96 ** floor(epoch / decay_epochs)")
    return verdict(run)


# --- chapter 06 -------------------------------------------------------------------------------

def _softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def check_ensemble_probs(fn) -> Result:
    """Check fn(logits (M, N, K)) -> (N, K): the members' class probabilities, averaged."""
    def run():
        logits = rng(11).normal(0, 3, (3, 5, 4))
        out = call(fn, logits.copy())
        expect_shape(out, (5, 4), "the ensemble's probabilities")
        if close(out, _softmax(logits).mean(0)):
            return
        diagnose(out, {"you averaged the logits; average the members' probabilities (softmax "
                       "each member first)": _softmax(logits.mean(0)),
                       "these are averaged logits, not probabilities: softmax each member first":
                       logits.mean(0)})
        raise Wrong("softmax each member's logits over the classes, then average over members")
    return verdict(run)


def check_topk_accuracy(fn) -> Result:
    """Check fn(probs (N, K), labels (N,), k) -> the fraction of examples whose label is among the
    k most probable classes."""
    def run():
        r = rng(12)
        probs, labels = _softmax(r.normal(size=(40, 10))), r.integers(0, 10, 40)
        ranks = (probs > probs[np.arange(40), labels][:, None]).sum(1)  # classes ranked above
        topk = {k: float(np.mean(ranks < k)) for k in (1, 2, 5, 6)}
        out = call(fn, probs.copy(), labels.copy(), 5)
        if np.ndim(as_array(out)) != 0:
            raise Wrong("return one number, the fraction of examples")
        diagnose(out, {"return a fraction of the examples, not a count": topk[5] * 40,
                       "that is top-1 accuracy; count a hit when the label is among the top k":
                       topk[1],
                       "off by one: take exactly k classes": topk[6]})
        if not close(out, topk[5]):
            raise Wrong("the label must be among the k classes of highest probability")
        if not close(call(fn, probs.copy(), labels.copy(), 1), topk[1]):
            raise Wrong("with k = 1 the result should be the top-1 accuracy")
    return verdict(run)


def check_weight_scale_gradient(answer) -> Result:
    """Check a number: the factor on the gradient of weights feeding BN when they are doubled (0.5)."""
    return check_number(answer, 0.5, {
        1.0: "the output does not change, but the gradient does: BN(2Wu) = BN(Wu) means the "
             "gradient with respect to 2W is half of that with respect to W",
        2.0: "BN undoes the scale in the forward pass, so the gradient shrinks rather than grows",
        0.25: "one factor 1/2, not two: the gradient scales as 1 / (weight scale)"},
        "the factor on the gradient")

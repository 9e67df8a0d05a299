"""Every exercise checker accepts the reference solution and explains typical wrong answers."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from bn_utils import exercises as ex


def _bn(x, axes, eps=1e-5, g=1.0, b=0.0, ddof=0):
    mu, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True, ddof=ddof)
    return g * (x - mu) / np.sqrt(var + eps) + b


def assert_rejects(result, words):
    assert not result and result.done, result
    assert words in result.message, result.message


def stub(*args):
    raise NotImplementedError


def test_a_stub_or_none_is_reported_as_not_done_without_raising(capsys):
    for result in (ex.check_bn_train(stub), ex.check_sigmoid_slope(None), ex.check_drift(None)):
        assert not result and not result.done and result.message.startswith("not done yet")
    assert "not done yet" in capsys.readouterr().out


def test_a_correct_answer_prints_correct_and_is_truthy(capsys):
    assert ex.check_sigmoid_slope(0.25)
    assert capsys.readouterr().out.strip() == "correct"


def test_an_answer_that_raises_is_explained_not_propagated():
    assert_rejects(ex.check_bn_train(lambda x, g, b, eps: x @ x), "raised ValueError")


def test_batch_stats():
    assert ex.check_batch_stats(lambda x: (x.mean(0), x.var(0)))
    assert_rejects(ex.check_batch_stats(lambda x: (x.mean(1), x.var(1))), "over the features")
    assert_rejects(ex.check_batch_stats(lambda x: (x.mean(0), x.var(0, ddof=1))), "N - 1")
    assert_rejects(ex.check_batch_stats(lambda x: (x.mean(0), x.std(0))), "standard deviation")


def test_bn_train():
    assert ex.check_bn_train(lambda x, g, b, eps: _bn(x, 0, eps, g, b))
    assert_rejects(ex.check_bn_train(lambda x, g, b, eps: _bn(x, 1, eps, g, b)), "axis 1")
    assert_rejects(ex.check_bn_train(lambda x, g, b, eps: _bn(x, 0, eps, g, b, 1)), "N - 1")
    assert_rejects(ex.check_bn_train(lambda x, g, b, eps: _bn(x, 0, 0.0, g, b)), "left out eps")
    assert_rejects(ex.check_bn_train(lambda x, g, b, eps: _bn(x, 0, eps, b, g)), "not the other way")


def test_drift():
    assert ex.check_drift(lambda v: v[1:].max() - v[1:].min())
    assert_rejects(ex.check_drift(lambda v: v.max() - v.min()), "step 0")
    assert_rejects(ex.check_drift(lambda v: abs(v[-1] - v[0])), "net change")


def test_number_exercises():
    assert ex.check_sigmoid_slope(0.25) and ex.check_batch_of_two(1.0)
    assert ex.check_jacobian_row_sum(0) and ex.check_parameter_difference(300)
    assert ex.check_weight_scale_gradient(0.5) and ex.check_noise_mean_scale((1 + 1.25) / 2)   # the mean of U[1, n_sigma], the paper's n_sigma 1.25
    assert_rejects(ex.check_sigmoid_slope(0.5), "sigmoid(0)")
    assert_rejects(ex.check_batch_of_two(2 ** 0.5), "unbiased")
    assert_rejects(ex.check_batch_of_two(0), "batch of one")
    assert_rejects(ex.check_parameter_difference(600), "drop their biases")
    assert_rejects(ex.check_parameter_difference(900), "buffers")
    assert_rejects(ex.check_weight_scale_gradient(1), "gradient does")
    assert_rejects(ex.check_noise_mean_scale(1.25), "upper end")
    assert_rejects(ex.check_jacobian_row_sum("zero"), "should be a number")
    assert_rejects(ex.check_jacobian_row_sum(1), "subtracts the mean")
    assert_rejects(ex.check_sigmoid_slope(1.0), "tanh")
    assert_rejects(ex.check_weight_scale_gradient(2), "shrinks")
    assert_rejects(ex.check_noise_mean_scale(1.0), "never below 1")
    assert_rejects(ex.check_parameter_difference(1234), "is not the number")


def test_bn_nhwc():
    assert ex.check_bn_nhwc(lambda x, g, b, eps: _bn(x, (0, 1, 2), eps, g, b))
    assert_rejects(ex.check_bn_nhwc(lambda x, g, b, eps: _bn(x, (1, 2), eps, g, b)), "instance norm")
    assert_rejects(ex.check_bn_nhwc(lambda x, g, b, eps: _bn(x, 0, eps, g, b)), "each position")
    assert_rejects(ex.check_bn_nhwc(lambda x, g, b, eps: _bn(x, 3, eps, g, b)), "over the channels")


def test_bn_nhwc_accepts_torch_answers():
    def torch_answer(x, g, b, eps):
        t = torch.as_tensor(x).permute(0, 3, 1, 2)
        out = F.batch_norm(t, None, None, torch.as_tensor(g), torch.as_tensor(b), True, 0.0, eps)
        return out.permute(0, 2, 3, 1)
    assert ex.check_bn_nhwc(torch_answer)


def test_running_update():
    def pytorch(rm, rv, x, m):
        return (1 - m) * rm + m * x.mean(0), (1 - m) * rv + m * x.var(0, ddof=1)
    assert ex.check_running_update(pytorch)
    assert_rejects(ex.check_running_update(
        lambda rm, rv, x, m: (m * rm + (1 - m) * x.mean(0), m * rv + (1 - m) * x.var(0, ddof=1))),
        "Keras")
    assert_rejects(ex.check_running_update(
        lambda rm, rv, x, m: ((1 - m) * rm + m * x.mean(0), (1 - m) * rv + m * x.var(0))), "unbiased")


def test_fold_linear():
    def fold(w, b, g, beta, mu, var, eps):
        s = g / np.sqrt(var + eps)
        return w * s[:, None], s * (b - mu) + beta
    assert ex.check_fold_linear(fold)
    assert_rejects(ex.check_fold_linear(lambda w, b, g, beta, mu, var, eps: (w, b)), "scaled by gamma")
    assert_rejects(ex.check_fold_linear(lambda w, b, g, beta, mu, var, eps: (
        w * (g / np.sqrt(var + eps))[:, None], g / np.sqrt(var + eps) * b + beta)), "running mean")
    assert_rejects(ex.check_fold_linear(lambda w, b, g, beta, mu, var, eps: (
        w * (g / np.sqrt(var + eps))[:, None], beta - mu * g / np.sqrt(var + eps))), "old bias")


def test_group_norm():
    def gn(x, groups, eps):
        return _bn(x.reshape(x.shape[0], groups, -1), 2, eps).reshape(x.shape)
    assert ex.check_group_norm(gn)
    assert ex.check_group_norm(lambda x, groups, eps: F.group_norm(torch.as_tensor(x), groups, eps=eps))
    assert_rejects(ex.check_group_norm(lambda x, groups, eps: _bn(x, (0, 2, 3), eps)), "that is BN")
    assert_rejects(ex.check_group_norm(lambda x, groups, eps: _bn(x, (1, 2, 3), eps)), "layer norm")
    assert_rejects(ex.check_group_norm(lambda x, groups, eps: _bn(x, (2, 3), eps)), "instance norm")


def test_dgamma_dbeta():
    assert ex.check_dgamma_dbeta(lambda d, xh: ((d * xh).sum(0), d.sum(0)))
    assert_rejects(ex.check_dgamma_dbeta(lambda d, xh: (d.sum(0), (d * xh).sum(0))), "swapped")
    assert_rejects(ex.check_dgamma_dbeta(lambda d, xh: ((d * xh).mean(0), d.mean(0))), "do not average")
    assert_rejects(ex.check_dgamma_dbeta(lambda d, xh: ((d * xh).sum(1), d.sum(1))), "axis 0")


def _backward(dout, x, g, eps, mean_term=True, var_term=True):
    n, inv = x.shape[0], 1 / np.sqrt(x.var(0) + eps)
    xhat = (x - x.mean(0)) * inv
    return g * inv / n * (n * dout - mean_term * dout.sum(0) - var_term * xhat * (dout * xhat).sum(0))


def test_bn_backward():
    assert ex.check_bn_backward(_backward)
    assert_rejects(ex.check_bn_backward(lambda *a: _backward(*a, mean_term=False)), "through the mean")
    assert_rejects(ex.check_bn_backward(lambda *a: _backward(*a, var_term=False)), "through the variance")
    assert_rejects(ex.check_bn_backward(lambda *a: _backward(*a, False, False)), "as constants")


def _numgrad(f, x, dout, h, central=True, weighted=True, restore=True, denominator=2):
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        plus = f(x).copy()
        x[ix] = old - h if central else old
        minus = f(x).copy()
        x[ix] = old if restore else old + h
        diff = (plus - minus) * (dout if weighted else 1)
        grad[ix] = diff.sum() / ((denominator if central else 1) * h)
    return grad


def test_numerical_gradient():
    assert ex.check_numerical_gradient(_numgrad)
    assert_rejects(ex.check_numerical_gradient(lambda *a: _numgrad(*a, central=False)), "one-sided")
    assert_rejects(ex.check_numerical_gradient(lambda *a: _numgrad(*a, weighted=False)), "dout")
    assert_rejects(ex.check_numerical_gradient(lambda *a: _numgrad(*a, restore=False)), "x changed")
    assert_rejects(ex.check_numerical_gradient(lambda *a: _numgrad(*a, denominator=1)), "2h")


def _sgd(net, x, y, lr, sign=-1.0, zero=True, mode="train"):
    getattr(net, mode)()
    loss = F.cross_entropy(net(x), y)
    if zero:
        net.zero_grad()
    loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(sign * lr * p.grad)
    net.train()
    return loss.item()


def test_sgd_step():
    assert ex.check_sgd_step(_sgd)
    assert_rejects(ex.check_sgd_step(lambda *a: _sgd(*a, sign=1.0)), "stepped up")
    assert_rejects(ex.check_sgd_step(lambda *a: _sgd(*a, zero=False)), "zero them")
    assert_rejects(ex.check_sgd_step(lambda *a: _sgd(*a, mode="eval")), "eval mode")


def test_steps_to_target():
    def first(steps, acc, target):
        hits = np.flatnonzero(acc >= target)
        return int(steps[hits[0]]) if len(hits) else None
    assert ex.check_steps_to_target(first)
    assert_rejects(ex.check_steps_to_target(lambda s, a, t: int(np.argmax(a >= t))), "index")
    assert_rejects(ex.check_steps_to_target(lambda s, a, t: int(s[np.argmax(a > t)])), ">= target")
    assert_rejects(ex.check_steps_to_target(
        lambda s, a, t: int(s[np.argmax(a >= t)]) if (a >= t).any() else -1), "return None")


def test_conv_block_params():
    assert ex.check_conv_block_params(lambda i, o, k, bn: i * o * k * k + (2 * o if bn else o))
    assert_rejects(ex.check_conv_block_params(lambda i, o, k, bn: i * o * k * k + (3 * o if bn else o)),
                   "drops its bias")
    assert_rejects(ex.check_conv_block_params(lambda i, o, k, bn: i * o * k * k + (4 * o if bn else o)),
                   "buffers")


def test_lr_scale_and_schedule():
    assert ex.check_lr_scale(lambda lr, b: lr * b / 32)
    assert_rejects(ex.check_lr_scale(lambda lr, b: lr * 32 / b), "larger step")
    assert_rejects(ex.check_lr_scale(lambda lr, b: lr * math.sqrt(b / 32)), "square-root")
    assert ex.check_lr_schedule(lambda lr, e, every: lr * 0.96 ** math.floor(e / every))
    assert_rejects(ex.check_lr_schedule(lambda lr, e, every: lr * 0.96 ** (e / every)), "steps")
    assert_rejects(ex.check_lr_schedule(lambda lr, e, every: lr * 0.96 ** math.ceil(e / every)), "ceil")


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_ensemble_and_topk():
    assert ex.check_ensemble_probs(lambda z: _softmax(z).mean(0))
    assert_rejects(ex.check_ensemble_probs(lambda z: _softmax(z.mean(0))), "averaged the logits")
    assert_rejects(ex.check_ensemble_probs(lambda z: z.mean(0)), "not probabilities")
    assert_rejects(ex.check_ensemble_probs(lambda z: _softmax(z).mean(1)), "shape")

    def topk(p, y, k):
        return float(np.mean([y[i] in np.argsort(-p[i])[:k] for i in range(len(y))]))
    assert ex.check_topk_accuracy(topk)
    assert_rejects(ex.check_topk_accuracy(lambda p, y, k: topk(p, y, 1)), "top-1")
    assert_rejects(ex.check_topk_accuracy(lambda p, y, k: topk(p, y, k) * len(y)), "count")
    assert_rejects(ex.check_topk_accuracy(lambda p, y, k: topk(p, y, k + 1)), "off by one")


def _noise(a, n_mu, n_sigma, r_mu, r_sigma, per="unit", lo=1.0):
    shape = (1, a.shape[1]) + (1,) * (a.dim() - 2) if per == "unit" else \
        (1,) * a.dim() if per == "layer" else a.shape
    mu = torch.empty(shape, dtype=a.dtype).uniform_(-n_mu, n_mu)
    sigma = torch.empty(shape, dtype=a.dtype).uniform_(lo, n_sigma)
    m = mu + torch.empty_like(a).uniform_(-r_mu, r_mu)
    return (sigma + r_sigma * torch.randn_like(a)) * a + m


def test_noisy_bn():
    from bn_utils.nn.variants import activation_noise

    assert ex.check_noisy_bn(_noise)
    assert ex.check_noisy_bn(lambda a, n_mu, n_sigma, r_mu, r_sigma: activation_noise(
        a, n_mu=n_mu, n_sigma=n_sigma, r_mu=r_mu, r_sigma=r_sigma))
    assert_rejects(ex.check_noisy_bn(lambda *a: _noise(*a, per="element")), "once per unit")
    assert_rejects(ex.check_noisy_bn(lambda *a: _noise(*a, per="layer")), "same nu_bar and s_bar")
    assert_rejects(ex.check_noisy_bn(lambda *a: _noise(*a, lo=0.0)), "[1, n_sigma]")
    assert_rejects(ex.check_noisy_bn(lambda a, n_mu, n_sigma, r_mu, r_sigma: _noise(
        a, n_mu, n_sigma, 0.0, 0.0)), "jitter")


def test_gradient_ics():
    def ics(g, g2):
        return np.linalg.norm(g - g2), g @ g2 / np.linalg.norm(g) / np.linalg.norm(g2)
    assert ex.check_gradient_ics(ics)
    assert_rejects(ex.check_gradient_ics(lambda g, g2: ics(g, g2)[::-1]), "order")
    assert_rejects(ex.check_gradient_ics(lambda g, g2: (ics(g, g2)[0], g @ g2)), "both norms")
    assert_rejects(ex.check_gradient_ics(
        lambda g, g2: (ics(g, g2)[0] / np.linalg.norm(g), ics(g, g2)[1])), "plain distance")


def test_smoothness_exercises():
    def beta(g0, grads, etas):
        return max(np.linalg.norm(gk - g0) / (e * np.linalg.norm(g0)) for gk, e in zip(grads, etas))
    assert ex.check_effective_smoothness(beta)
    assert_rejects(ex.check_effective_smoothness(
        lambda g0, gr, e: (np.linalg.norm(gr - g0, axis=1) / e).max()), "length of the step")
    assert_rejects(ex.check_effective_smoothness(lambda g0, gr, e: (
        np.linalg.norm(gr - g0, axis=1) / (e * np.linalg.norm(g0))).mean()), "not the mean")
    assert ex.check_safe_lr(lambda b: 2 / b)
    assert_rejects(ex.check_safe_lr(lambda b: 1 / b), "best guaranteed")
    assert_rejects(ex.check_safe_lr(lambda b: b / 2), "invert")


def test_lp_divisor_matches_the_layer():
    from bn_utils.nn.variants import lp_scale

    assert ex.check_lp_divisor(lambda c, p: lp_scale(torch.as_tensor(c), p))
    c_sum = lambda c, p: ((np.abs(c) ** p).sum(1) ** (1 / p)).mean()  # noqa: E731
    assert_rejects(ex.check_lp_divisor(c_sum), "not the sum")
    assert_rejects(ex.check_lp_divisor(lambda c, p: (np.abs(c) ** p).mean() ** (1 / p)), "norm first")
    assert_rejects(ex.check_lp_divisor(lambda c, p: lp_scale(torch.as_tensor(c), p, "unit")), "one number")


def test_every_chapter_ends_with_exercises_in_stub_check_solution_order_a_try_it_list_and_reading():
    import json
    import re
    from pathlib import Path

    chapters = sorted((Path(__file__).resolve().parents[2] / "chapters").glob("0[1-9]_*.ipynb"))
    assert len(chapters) == 9
    for path in chapters:
        cells = json.loads(path.read_text())["cells"]
        code = [("".join(c["source"]), c["metadata"].get("tags", [])) for c in cells
                if c["cell_type"] == "code"]
        # collapsed solutions (the parameters and setup cells are collapsed too: not solutions)
        solutions = [i for i, (src, tags) in enumerate(code)
                     if "hide-cell" in tags and src.lstrip().startswith("# Solution")]
        assert 3 <= len(solutions) <= 5, path.name
        for i in solutions:
            (stub, _), (check, _), (solution, _) = code[i - 2: i + 1]
            name = re.search(r"ex\.(check_\w+)\(", check).group(1)
            assert hasattr(ex, name) and not check.startswith("assert"), (path.name, check)
            assert "raise NotImplementedError" in stub or "= None" in stub, (path.name, stub)
            assert f"assert ex.{name}(" in solution, (path.name, solution)
        # the "Try it" list, then the chapter's short reading list
        try_it, reading = ("".join(c["source"]) for c in cells[-2:])
        assert try_it.startswith("## Try it") and "python -m bn_utils.book.run" in try_it, path.name
        assert reading.startswith("## Further reading") and "{cite:t}`" in reading, path.name


# ---- chapter 09 ------------------------------------------------------------------------------

def test_renorm_tight_accepts_plain_bn_and_names_the_unbiased_variance_and_the_axis():
    def good(x):
        return (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    assert ex.check_renorm_tight(good)
    assert_rejects(ex.check_renorm_tight(lambda x: (x - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + 1e-5)), "N - 1")
    over_features = lambda x: (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    assert_rejects(ex.check_renorm_tight(over_features), "axis 0")
    assert_rejects(ex.check_renorm_tight(lambda x: x), "nothing is corrected")


def test_rms_norm_accepts_the_root_mean_square_and_names_layer_norm_and_the_axis():
    assert ex.check_rms_norm(lambda x: x / np.sqrt((x ** 2).mean(1, keepdims=True) + 1e-5))
    layer_norm = lambda x: (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    assert_rejects(ex.check_rms_norm(layer_norm), "LayerNorm")
    assert_rejects(ex.check_rms_norm(lambda x: x / np.sqrt((x ** 2).mean(0, keepdims=True) + 1e-5)), "axis 0")
    assert not ex.check_rms_norm(None).done


def test_dropout_variance_accepts_the_formula_and_names_the_missing_mean_term():
    assert ex.check_dropout_variance(lambda v, mu, q: (v + mu ** 2) / q - mu ** 2)
    assert "mean contributes" in ex.check_dropout_variance(lambda v, mu, q: v / q).message
    assert "divides by q" in ex.check_dropout_variance(lambda v, mu, q: v * q).message

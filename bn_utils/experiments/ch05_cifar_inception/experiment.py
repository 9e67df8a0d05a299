"""One training run of chapter 05 (a :class:`RunConfig`: the data, the model, momentum SGD with a
staircase schedule, test-set evaluations), stored as its own record; and the table of runs."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

from ...training import augment, train
from ... import data, runtime
from ...book import results
from ...nn import tiny_inception, models
from .config import CHAPTER, AblationConfig, RunConfig


def cifar_uint8(n_train: int, n_test: int, device: str) -> tuple[torch.Tensor, ...]:
    """Return CIFAR-10 ``(x_train, y_train, x_test, y_test)`` on ``device``: uint8 (N, 32, 32, 3)
    images, int64 labels (class-stratified subsets, the same for every run; ``data.device_tensors``:
    decoded once per process, shared)."""
    return data.device_tensors("cifar10", device, uint8=True, n_train=n_train, n_test=n_test)


def build_model(rc: RunConfig) -> nn.Module:
    """Return the run's TinyInception, He-initialised (then ``init_gain``), in channels_last if asked."""
    runtime.seed_everything(rc.seed)
    model = tiny_inception.TinyInception(width=rc.width, bn=rc.bn, act=rc.activation,
                                        dropout=rc.dropout, five=rc.five, final_bn=rc.final_bn)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                m.weight.mul_(rc.init_gain)
                if m.bias is not None:
                    m.bias.zero_()
    if rc.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def optimizer(model: nn.Module, rc: RunConfig) -> torch.optim.SGD:
    """Return momentum SGD with weight decay on conv and linear weights only (not BN, not biases)."""
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    rest = [p for n, p in model.named_parameters() if p.ndim <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": rc.weight_decay},
                            {"params": rest, "weight_decay": 0.0}], lr=rc.lr, momentum=rc.momentum)


def lr_schedule(rc: RunConfig):
    """Return ``lr_at(step)``: ``lr * lr_decay ** floor(epoch / decay_epochs)`` (a staircase)."""
    period = rc.decay_epochs * rc.steps_per_epoch

    def lr_at(step: int) -> float:
        return rc.lr * rc.lr_decay ** math.floor(step / period)
    return lr_at


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500, *,
            channels_last: bool = True) -> torch.Tensor:
    """Return float32 logits of ``model`` in eval mode on uint8 images (N, H, W, C), computed by a
    copy with its BN layers folded into the convolutions (a quarter less time on a CPU, the same
    logits up to float rounding); ``model`` itself is not touched."""
    with torch.inference_mode():
        return train.logits(models.fold_nested(model), x, batch_size,
                            functools.partial(augment.normalise, channels_last=channels_last))


def dense_eval_steps(rc: RunConfig) -> list[int]:
    """Return the steps of the extra early evaluations (those the regular ones do not cover)."""
    if not rc.dense_evals_per_epoch:
        return []
    every = max(1, rc.steps_per_epoch // rc.dense_evals_per_epoch)
    regular = rc.steps_per_epoch // rc.evals_per_epoch
    last = min(rc.steps, int(rc.dense_epochs * rc.steps_per_epoch))
    return [s for s in range(every, last + 1, every) if s % regular and s < rc.steps]


def train_run(rc: RunConfig, *, checkpoint=None, chapter: str = CHAPTER) -> dict:
    """Train one run; return its history, steps per epoch, best/final test accuracy, whether it
    diverged, and its final test logits (float16) and labels."""
    device = runtime.default_device()
    x_tr, y_tr, x_te, y_te = cifar_uint8(rc.n_train, rc.n_test, str(device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True   # fixed shapes: let cuDNN pick its fastest kernels
    model = build_model(rc).to(device)
    net = train.Autocast(model, train.amp_dtype(device) if rc.amp else None)
    aug = augment.Augment(pad=rc.pad, flip=rc.flip, jitter=rc.jitter, channels_last=rc.channels_last)
    batches = augment.AugmentedBatches(data.batches(x_tr, y_tr, rc.batch_size, seed=rc.seed), aug)
    spe = rc.steps_per_epoch

    def eval_fn(m: nn.Module) -> dict:
        return train.scores(predict(m, x_te, channels_last=rc.channels_last), y_te)

    def dense_eval(step, m, x, y) -> dict:   # a hook: recorded in History.measures
        return eval_fn(m)

    hist = train.fit(net, batches, steps=rc.steps, optimizer=optimizer(model, rc),
                     lr_at=lr_schedule(rc), eval_fn=eval_fn, eval_every=spe // rc.evals_per_epoch,
                     log_every=max(1, spe // 4), checkpoint=checkpoint, checkpoint_every=spe,
                     hooks={s: [dense_eval] for s in dense_eval_steps(rc)}, progress=rc.name,
                     identity={"chapter": chapter, "name": rc.name, "digest": rc.digest()})
    logits = predict(net, x_te, channels_last=rc.channels_last)
    final = train.scores(logits, y_te)["accuracy"] if not hist.diverged else math.nan
    return {"history": hist.to_dict(), "steps_per_epoch": spe, "diverged": hist.diverged,
            "max_accuracy": max(a for a in hist.evals["accuracy"] if math.isfinite(a)),
            "final_accuracy": final,
            "images_per_second": hist.steps_done * rc.batch_size / max(hist.seconds, 1e-9),
            "test_logits": logits.cpu().numpy().astype(np.float16),
            "test_labels": y_te.cpu().numpy().astype(np.int8)}


def run_one(rc: RunConfig, chapter: str = CHAPTER) -> results.Record:
    """Return the stored record of one run, training it if needed (resuming from its checkpoint
    if an earlier attempt was killed; the checkpoint is removed once the record is stored)."""
    ckpt = results.checkpoint_path(chapter, rc.name, rc)
    record = results.load_or_run(chapter, rc.name, rc,
                                 functools.partial(train_run, checkpoint=ckpt, chapter=chapter),
                                 lock=True)
    ckpt.unlink(missing_ok=True)
    return record


def stored_runs(cfg: AblationConfig, row: str, seeds=range(10)) -> dict:
    """Return ``{seed: record}`` of the runs of ``row`` at ``cfg``'s settings that are stored
    under any of ``seeds`` and did not diverge (never trains: chapter 06 stores BN-x30's extra
    seeds here)."""
    out = {}
    for seed in seeds:
        rc = cfg.run_config(row, seed)
        record = results.load(CHAPTER, rc.name, rc)
        if record is not None and not record["diverged"]:
            out[seed] = record
    return out


def _table_row(seeds: list, runs: list) -> dict:
    return {"seeds": list(seeds),
            "steps_per_epoch": runs[0]["steps_per_epoch"],
            "history": [r["history"] for r in runs],
            "diverged": [r["diverged"] for r in runs],
            "max_accuracy": [r["max_accuracy"] for r in runs],
            "final_accuracy": [r["final_accuracy"] for r in runs],
            "images_per_second": [r["images_per_second"] for r in runs]}


def stored_table(cfg: AblationConfig) -> results.Record | None:
    """Return the table of ``cfg`` assembled from the runs stored so far, never training: each
    row with the seeds of ``cfg.seeds`` it has (``meta["runs"]`` says how many of how many);
    None unless every row has at least one. A long table lands run by run; this shows it as it
    stands, and each verdict says how many seeds it rests on."""
    metrics, metas, stored = {}, [], 0
    for row in cfg.rows:
        runs = {}
        for seed in cfg.seeds:
            rc = cfg.run_config(row, seed)
            record = results.load(CHAPTER, rc.name, rc)
            if record is not None:
                runs[seed] = record
        if not runs:
            return None
        metrics[row] = _table_row(list(runs), [r.metrics for r in runs.values()])
        metas += [r.meta for r in runs.values()]
        stored += len(runs)
    meta = results.assembled_meta(metas, f"{stored} of {len(cfg.rows) * len(cfg.seeds)}")
    return results.Record(CHAPTER, "ablation", cfg.to_dict(), metrics, meta=meta)


def run_table(cfg: AblationConfig) -> dict:
    """Train (or load) every (row, seed) run; return per row its seeds' histories and summaries."""
    return {row: _table_row(cfg.seeds, [run_one(cfg.run_config(row, seed)) for seed in cfg.seeds])
            for row in cfg.rows}


def _reference_so_far() -> results.Record | None:
    """The reference runs stored so far, as one table (what stands in while they land)."""
    return stored_table(AblationConfig.for_profile("reference"))


def shown_config(cfg: AblationConfig) -> AblationConfig:
    """Return the configuration of the record :func:`run` shows for ``cfg``, training nothing
    (:func:`results.stand_in`, as ``run`` chooses): the page's table of rows shows what its
    results were trained with."""
    shown = results.stand_in(CHAPTER, "ablation", cfg, partial=_reference_so_far)
    return cfg if shown is None else AblationConfig.from_record(shown)


def run(cfg: AblationConfig) -> results.Record:
    """Return the stored table of ``cfg``, training and storing what is missing. At the unmodified
    quick profile: the best stored table (full, else reference), else the reference runs stored so
    far (:func:`stored_table`, when every row has one), else a fresh quick table."""
    return results.load_or_run(CHAPTER, "ablation", cfg, run_table, prefer_stored=True,
                               partial=_reference_so_far)


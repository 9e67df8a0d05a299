"""How a network is trained and measured, on top of ``bn_utils.nn`` (the layers) and
``bn_utils.data`` (the datasets):

* ``augment``: batched image augmentation on tensors (crops, flips, colour jitter);
* ``train``: the one training loop (``fit``), its checkpoints and resume, and the accuracy loops;
* ``measure``: what the chapters measure on a network (activation statistics, gradient changes,
  the loss landscape);
* ``checks``: numerical gradient checks;
* ``search``: the genetic algorithm of chapter 9's hyper-parameter search.

Nothing here imports the records, the pages or a chapter: those layers sit above.
"""

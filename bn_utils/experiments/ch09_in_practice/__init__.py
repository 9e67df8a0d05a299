"""Chapter 09: BN in practice, nine experiments on MNIST subsets (a small CNN where an experiment
is about the batch statistics of images, an MLP elsewhere).

* ``config``: the chapter's one config (``PracticeConfig``) and its profiles;
* ``nets``, ``training``: the networks, the data and one training run they all share;
* ``small_batches``: BN's two modes at small batches, and the alternatives to BN (experiments 1-2);
* ``mlp_choices``: BN's placement, dropout, the initial weights' scale, weight decay (3-5, 8);
* ``ga_search``: a genetic search of learning rate and L2, with and without BN (6);
* ``cost``: what BN costs in time, and what folding it saves (7);
* ``finetune``: fine-tuning with batches of 2-4, BN in training mode or frozen (9);
* ``experiment``: the one caller of the store: each experiment's record, and the extra records
  (more seeds, searches, timings, test images);
* ``headlines``: the practitioners' claims, decided over the seeds;
* ``figures``: one figure per experiment, from its stored record.

Each experiment's module holds its measurement (what ``experiment.run`` stores) and its tables;
its figures are in ``figures``, as in every chapter package.

The chapter imports the modules by these names; the config is re-exported here.
"""

from .config import CHAPTER, STUDENT_MLP, PracticeConfig  # noqa: F401

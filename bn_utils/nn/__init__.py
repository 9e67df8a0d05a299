"""What BN is: the layers and the networks built from them.

* ``norms``: batch normalisation written from scratch (forward, backward, running statistics);
* ``alternatives``: what chapter 9 compares BN with (Batch Renormalization, RMSNorm, GroupNorm,
  LayerNorm);
* ``variants``: the layers Santurkar et al. use to pull BN's effects apart (BN with injected
  noise, noise alone, the ℓp normalisations);
* ``registry``: every normalisation layer by name (``make_norm``);
* ``models``: the MLP, the small CNN, the VGGs and the deep linear network, the one "is this a
  BN layer" check (``is_bn_layer``) and BN folding;
* ``tiny_inception``: the Inception network of chapter 5;
* ``stacked_mlp``: many small MLPs trained as one batched model (the fast path of chapter 4).

Nothing here imports the training loop, the records or a chapter: those layers sit above.
"""

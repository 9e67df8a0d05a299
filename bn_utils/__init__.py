"""bn_utils: the reusable code behind the Batch Normalization book.

Chapters tell, ``bn_utils`` does, ``results`` remember. The layers, lowest first (a module
imports only from its own layer or those below, ``tests/test_layers.py``): ``runtime`` and
``files`` (devices, atomic writes, safe reading); ``nn`` (what BN is: the norms, the networks);
``data`` and ``training`` (datasets, the training loop, measurements, gradient checks); ``book``
(profiles, records, claims, figures, the headless runner); ``exercises``; ``experiments`` (one
per chapter, ``ch10_verdicts`` the closing page). CONTRIBUTING.md has the map.
"""

__version__ = "0.1.0"

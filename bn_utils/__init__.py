"""bn_utils: the reusable code behind the Batch Normalization book.

Chapters tell, ``bn_utils`` does, ``results`` remember. One module per concept:
``norms`` (BN from scratch), ``checks`` (gradient checks), ``data``, ``models``, ``train``,
``measure``, ``results``, ``profiles``, ``plotting`` and ``run`` (headless reruns).
"""

__version__ = "0.1.0"

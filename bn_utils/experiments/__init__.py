"""One module per chapter experiment: its frozen config (with profiles) and the functions that
run it. Notebooks call these; the reusable pieces they use live in the layers below
(``nn``, ``training``, ``book``)."""

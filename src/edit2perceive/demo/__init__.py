"""``make demo``: the whole job offline on tiny models (:mod:`.run`), and the tiny training runs
it is made of (:mod:`.tiny_run`). Run it with ``python -m edit2perceive.demo``."""

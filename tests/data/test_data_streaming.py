"""datasets streaming: sources, mixture ratios (statistical), shuffling, epochs, node split, resume."""

import numpy as np
import pytest

from edit2perceive.data import make_example, source_dataset, synthetic_scenes, task_mixture
from edit2perceive.data.base import Reader


class TinyReader(Reader):
    """n tiny examples; ids i.e. '<name>/<k>'. Record 'bad' ones raise like a corrupt file."""

    targets = ("depth",)

    def __init__(self, name, n, bad=()):
        self.name, self.n, self.bad_ids = name, n, set(bad)
        self.root, self.strict, self.limit, self._records = None, False, None, None
        from edit2perceive.data import BadDataLog

        self.bad = BadDataLog()

    def _list_records(self):
        return [{"id": f"{k:05d}", "file": f"{self.name}_{k:05d}.png", "k": k} for k in range(self.n)]

    def load(self, r):
        if r["k"] in self.bad_ids:
            raise OSError(f"{r['file']}: truncated file")
        return make_example(np.full((2, 2, 3), r["k"] % 256, np.uint8), depth=np.ones((2, 2)), meta=self.meta(r))


def ids(ds, n=None):
    return [ex["meta"]["id"] for _, ex in zip(range(n or 10**9), ds, strict=False)]


def test_source_dataset_yields_example_dicts():
    ds = source_dataset(synthetic_scenes(5, (16, 24), seed=0), num_shards=2)
    examples = list(ds)
    assert sorted(e["meta"]["id"] for e in examples) == [f"synthetic/0/{i}" for i in range(5)]
    ex = examples[0]
    assert ex["rgb"].dtype == np.uint8 and ex["depth"].dtype == np.float32 and ex["valid_mask"].dtype == bool
    assert isinstance(ex["meta"]["intrinsics"], tuple)
    direct = synthetic_scenes(5, (16, 24), seed=0)[int(ex["meta"]["id"].rsplit("/", 1)[1])]
    np.testing.assert_array_equal(ex["normal"], direct["normal"])  # lossless


def test_mixture_ratio_is_realized_statistically():
    n = 3000
    mix = task_mixture("depth", {"hypersim": TinyReader("hypersim", 5000), "vkitti2": TinyReader("vkitti2", 5000)}, seed=3)
    drawn = ids(mix, n)
    k = sum(i.startswith("vkitti2/") for i in drawn)
    sd = np.sqrt(n * 0.1 * 0.9)  # binomial: 300 +- 16.4
    assert abs(k - 0.1 * n) < 4 * sd, k
    normal = task_mixture("normal", {name: TinyReader(name, 3000) for name in ("hypersim", "interiorverse", "sintel")}, seed=0)
    counts = {}
    for i in ids(normal, n):
        counts[i.split("/")[0]] = counts.get(i.split("/")[0], 0) + 1
    for name, p in (("hypersim", 0.5), ("interiorverse", 0.45), ("sintel", 0.05)):
        assert abs(counts[name] - p * n) < 4 * np.sqrt(n * p * (1 - p)), counts


def test_mixture_rejects_unknown_sources():
    with pytest.raises(ValueError, match=r"no ratio for \['nyu'\]"):
        task_mixture("depth", {"nyu": TinyReader("nyu", 3)})


def test_shuffle_seed_and_epoch():
    base = source_dataset(TinyReader("hypersim", 40), num_shards=8)
    a = ids(base.shuffle(seed=1, buffer_size=10))
    b = ids(base.shuffle(seed=1, buffer_size=10))
    assert a == b and sorted(a) == sorted(ids(base)) and a != ids(base)
    shuffled = base.shuffle(seed=1, buffer_size=10)
    shuffled.set_epoch(1)
    assert ids(shuffled) != a and sorted(ids(shuffled)) == sorted(a)


def test_split_by_node_partitions_the_stream():
    mix0 = task_mixture("depth", {"hypersim": TinyReader("hypersim", 64), "vkitti2": TinyReader("vkitti2", 16)},
                        seed=0, rank=0, world_size=2, num_shards=8, stopping_strategy="first_exhausted")
    mix1 = task_mixture("depth", {"hypersim": TinyReader("hypersim", 64), "vkitti2": TinyReader("vkitti2", 16)},
                        seed=0, rank=1, world_size=2, num_shards=8, stopping_strategy="first_exhausted")
    a, b = set(ids(mix0)), set(ids(mix1))
    assert a and b and not (a & b)
    whole = source_dataset(TinyReader("hypersim", 64), num_shards=8)
    from edit2perceive.data import split_by_node

    parts = [set(ids(split_by_node(whole, r, 4))) for r in range(4)]
    assert set().union(*parts) == set(ids(whole)) and sum(map(len, parts)) == 64


def test_state_dict_resumes_at_the_checkpoint():
    mix = task_mixture("depth", {"hypersim": TinyReader("hypersim", 200), "vkitti2": TinyReader("vkitti2", 200)}, seed=7)
    it = iter(mix)
    first = [next(it)["meta"]["id"] for _ in range(25)]
    state = mix.state_dict()
    rest = [next(it)["meta"]["id"] for _ in range(25)]
    mix.load_state_dict(state)
    again = ids(mix, 25)
    assert not set(again) & set(first)  # never replays what was consumed before the checkpoint
    # exact in almost every run; datasets 5.2 intermittently resumes one source's stream one
    # example late when the checkpoint falls on the last example of a shard (seen ~1 run in 10):
    # the mixture's source choices stay the same and that one source skips one example.
    # Allow exactly that, nothing else.
    if again != rest:
        def source(x):
            return x.split("/")[0]

        assert [source(x) for x in again] == [source(x) for x in rest], (rest[:5], again[:5])
        shifted = []
        for name in {source(x) for x in rest}:
            r = [x for x in rest if source(x) == name]
            a = [x for x in again if source(x) == name]
            if a != r:
                assert a[:-1] == r[1:], (name, r[:5], a[:5])
                shifted.append(name)
        assert len(shifted) == 1, shifted


def test_bad_samples_in_a_stream_are_skipped_with_a_warning():
    reader = TinyReader("am2k", 10, bad={3, 7})
    with pytest.warns(UserWarning, match=r"am2k_00003\.png: truncated file"):
        got = ids(source_dataset(reader, num_shards=1))
    assert len(got) == 8 and "am2k/00003" not in got

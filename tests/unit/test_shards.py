from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from cronfleet.shards import assign_shards, shard_for, shards_by_owner


def test_shard_for_is_stable_and_in_range() -> None:
    job = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert shard_for(job, 256) == shard_for(str(job), 256)
    assert all(0 <= shard_for(uuid.uuid4(), 256) < 256 for _ in range(1000))


def test_one_scheduler_owns_every_shard() -> None:
    assert set(assign_shards(256, ["a"], {}).values()) == {"a"}


def test_two_schedulers_split_evenly() -> None:
    owners = shards_by_owner(assign_shards(256, ["a", "b"], {}))
    assert sorted(len(v) for v in owners.values()) == [128, 128]


def test_no_schedulers_no_owners() -> None:
    assert assign_shards(256, [], {0: "a"}) == {}


@given(
    shards=st.integers(1, 300),
    before=st.lists(st.sampled_from("abcdef"), min_size=1, max_size=6, unique=True),
    after=st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8, unique=True),
)
def test_assignment_is_total_balanced_and_moves_little(
    shards: int, before: list[str], after: list[str]
) -> None:
    current = assign_shards(shards, before, {})
    target = assign_shards(shards, after, current)
    assert sorted(target) == list(range(shards))
    counts = [sum(1 for o in target.values() if o == s) for s in after]
    assert max(counts) - min(counts) <= 1
    # A survivor keeps every shard it had, up to its fair share.
    fair = -(-shards // len(after))
    for s in set(before) & set(after):
        kept = sum(1 for k, o in current.items() if o == s and target[k] == s)
        had = sum(1 for o in current.values() if o == s)
        assert kept >= min(had, fair - 1)

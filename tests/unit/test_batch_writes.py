"""Grouping rows into unlogged batches: partitions together, bounded in size."""

from __future__ import annotations

from projections import batch_writes
from projections.batch_writes import batches_of

STATEMENT = "INSERT INTO ks.t (k, c, v) VALUES (%s, %s, %s)"


def test_rows_of_one_partition_share_a_batch_when_they_fit() -> None:
    rows = [(("s1", "A"), ("s1/A", f"A-{n}", "x")) for n in range(100)]

    batches = batches_of(STATEMENT, rows)

    assert [len(batch) for batch in batches] == [100]


def test_one_row_partitions_are_packed_together_when_many() -> None:
    rows = [(f"h{n}", (f"h{n}", "c", "x")) for n in range(45)]

    batches = batches_of(STATEMENT, rows)

    assert [len(batch) for batch in batches] == [20, 20, 5]


def test_a_large_partition_is_cut_when_over_its_row_limit() -> None:
    most = batch_writes.PARTITION_ROWS_PER_BATCH
    rows = [("p", ("p", f"c{n}", "x")) for n in range(most + 1)]

    batches = batches_of(STATEMENT, rows)

    assert [len(batch) for batch in batches] == [most, 1]


def test_no_batch_grows_past_the_byte_limit_when_rows_are_large() -> None:
    big = "x" * (batch_writes.BATCH_BYTES // 3)
    rows = [("p", ("p", f"c{n}", big)) for n in range(7)]

    batches = batches_of(STATEMENT, rows)

    assert [len(batch) for batch in batches] == [2, 2, 2, 1]

"""The routing table: a route beats the hash, a newer epoch beats an older route."""

from __future__ import annotations

from infra.routing import Route, Router, RoutingTable, decode_route, encode_route
from infra.settings import Settings
from infra.topics import partition_for

KEY = "show-1/floor"
PARTITIONS = 8


def other_partition(key: str) -> int:
    return (partition_for(key, PARTITIONS) + 3) % PARTITIONS


def test_partition_is_the_stable_hash_when_the_key_has_no_route() -> None:
    table = RoutingTable({"show-1/stalls": Route(5, 1)})

    partition = table.partition(KEY, PARTITIONS)

    assert partition == partition_for(KEY, PARTITIONS)


def test_partition_is_the_route_when_the_key_has_one() -> None:
    table = RoutingTable()
    table.apply(KEY, Route(other_partition(KEY), 1))

    partition = table.partition(KEY, PARTITIONS)

    assert partition == other_partition(KEY) != partition_for(KEY, PARTITIONS)


def test_newer_epoch_wins_when_routes_arrive_in_any_order() -> None:
    newer, older = Route(2, 2), Route(6, 1)
    forward, backward = RoutingTable(), RoutingTable()

    forward.apply(KEY, older)
    forward.apply(KEY, newer)
    taken = backward.apply(KEY, newer), backward.apply(KEY, older)

    assert forward.route(KEY) == backward.route(KEY) == newer
    assert taken == (True, False)


def test_same_epoch_does_not_replace_the_route_when_read_again() -> None:
    table = RoutingTable({KEY: Route(2, 3)})

    taken = table.apply(KEY, Route(4, 3))

    assert not taken
    assert table.partition(KEY, PARTITIONS) == 2


def test_partition_falls_back_to_the_hash_when_the_route_names_no_partition() -> None:
    table = RoutingTable({KEY: Route(PARTITIONS + 4, 1)})

    partition = table.partition(KEY, PARTITIONS)

    assert partition == partition_for(KEY, PARTITIONS)


def test_route_round_trips_and_garbage_decodes_to_none_when_read() -> None:
    route = Route(3, 7)

    assert decode_route(encode_route(route)) == route
    assert decode_route(b"") is None
    assert decode_route(b"\xff\xfe") is None
    assert decode_route(b'{"partition": 1}') is None


def test_router_routes_by_the_table_when_it_reads_no_topic() -> None:
    router = Router.hashed(Settings(command_partitions=PARTITIONS))
    before = router.partition(KEY)

    router.apply([(KEY, Route(other_partition(KEY), 1))])

    assert before == partition_for(KEY, PARTITIONS)
    assert router.partition(KEY) == other_partition(KEY)

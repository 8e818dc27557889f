"""The ``ticketing`` command: services, processes of the system, and the on-sale."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from commands.errors import TicketingError
from infra.logs import configure as configure_logging
from infra.settings import Settings, SettingsError

logger = logging.getLogger("ticketing")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    services = commands.add_parser("services", help="local Kafka and Cassandra")
    services.add_argument("action", choices=("up", "down", "status"))
    services.add_argument("--reset", action="store_true", help="wipe data on up")
    services.add_argument(
        "--cluster",
        action="store_true",
        help="3 brokers and 2 Cassandra nodes on 127.0.0.x (infra/conf/cluster.env)",
    )

    commands.add_parser("topics", help="create missing topics")
    commands.add_parser("agent", help="run the inventory agent (Faust worker)")
    commands.add_parser("projection", help="run the projection worker")
    commands.add_parser("gateway", help="run the HTTP gateway")
    commands.add_parser("payments", help="run the payments worker")
    commands.add_parser("audit", help="check the log's invariants, serve metrics")
    capacity = commands.add_parser("capacity", help="size a peak from bench figures")
    capacity.add_argument("--requests-per-second", type=float, default=2_000_000)
    capacity.add_argument("--seats", type=int, default=70_000)
    capacity.add_argument("--minutes", type=float, default=10.0)
    capacity.add_argument("--places-per-hold", type=float, default=2.0)
    capacity.add_argument("--attempts-per-hold", type=float, default=3.0)
    capacity.add_argument("--commands-per-hold", type=float, default=3.0)
    capacity.add_argument("--headroom", type=float, default=2.0)
    provider = commands.add_parser("provider", help="run the simulated provider")
    for name in _PROVIDER_KNOBS:
        provider.add_argument("--" + name.replace("_", "-"), type=float, default=0.0)
    provider.add_argument("--seed", type=int, default=None)
    commands.add_parser(
        "settings", help="every TICKETING_* setting: value in effect and default"
    )

    _analyst_parsers(commands)
    _partitions_parser(commands)
    from infra.token_command import add_token_parser

    add_token_parser(commands)

    onsale = commands.add_parser("onsale", help="run a real on-sale and report")
    from infra.onsale.plan import add_arguments as add_onsale_arguments

    add_onsale_arguments(onsale)
    return parser


_PROVIDER_KNOBS = (
    "latency_seconds",
    "decline_rate",
    "error_rate",
    "timeout_rate",
    "processing_rate",
    "drop_webhook_rate",
    "reorder_seconds",
    "duplicate_webhooks",
)
"""Behaviour of the simulated provider settable at start (``--decline-rate 0.1``)."""


def _analyst_parsers(commands: Any) -> None:
    """``replay`` and ``export``: rebuilding read models and slicing the log."""
    replay = commands.add_parser(
        "replay", help="rebuild the read models from offset zero into a new keyspace"
    )
    replay.add_argument("--keyspace", required=True, help="fresh keyspace to fill")
    replay.add_argument(
        "--switch", action="store_true", help="make it the live keyspace when done"
    )
    replay.add_argument("--max-seconds", type=float, default=3600.0)

    export = commands.add_parser("export", help="write a slice of the event log")
    export.add_argument("--show", help="only this show")
    export.add_argument("--section", help="only this section")
    export.add_argument(
        "--type", action="append", default=[], help="event type; repeatable"
    )
    export.add_argument(
        "--since", type=_time_ms, help="log time from (ISO 8601, included)"
    )
    export.add_argument(
        "--until", type=_time_ms, help="log time to (ISO 8601, excluded)"
    )
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--out", default="-", help="file, or - for standard output")


def _partitions_parser(commands: Any) -> None:
    """``partitions status|move|stripe``: load per partition, moves, stripes."""
    from infra.stripe_command import add_stripe_parser

    partitions = commands.add_parser(
        "partitions", help="per-partition load and lag; move or stripe a section"
    )
    actions = partitions.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="rate, lag, sections, hottest keys")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--sample", type=int, default=500, help="newest records read per partition"
    )
    status.add_argument(
        "--window-seconds", type=float, default=10.0, help="how recent a rate"
    )
    move = actions.add_parser("move", help="move SHOW/SECTION to another partition")
    move.add_argument("section", help="the section, as SHOW/SECTION")
    move.add_argument("--to", type=int, required=True, help="target partition")
    move.add_argument("--timeout-seconds", type=float, default=30.0)
    move.add_argument("--json", action="store_true", help="print JSON")
    add_stripe_parser(actions)


def _partitions(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``partitions status``, ``move`` or ``stripe``."""
    from infra import partitions
    from infra.stripe_command import run_stripe

    if args.action == "stripe":
        return run_stripe(settings, args.target, args.stripes, args.timeout_seconds)
    if args.action == "status":
        statuses, routes = partitions.read_status(
            settings, args.sample, args.window_seconds
        )
        document = partitions.status_document(
            statuses, routes, settings.command_partitions
        )
        print(
            partitions.dumps(document)
            if args.json
            else partitions.render_status(document)
        )
        return 0
    result = partitions.move_section(
        settings, args.section, args.to, args.timeout_seconds
    )
    if args.json:
        print(partitions.dumps(result.document()))
    else:
        print(
            f"{result.key}: moved from partition {result.from_partition} to "
            f"{result.to_partition} (route epoch {result.epoch}); handed off "
            f"{result.handed_off_after_seconds:.3f} s and adopted "
            f"{result.adopted_after_seconds:.3f} s after the command was sent"
        )
    return 0


def _time_ms(text: str) -> int:
    """An ISO 8601 time as ms since the epoch; argparse reports a ValueError."""
    from projections.export import parse_time_ms

    return parse_time_ms(text)


def _analyst(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``replay`` or ``export``; 1 if a replay did not reach the end."""
    if args.command == "replay":
        from projections.replay_command import run_replay

        result = run_replay(settings, args.keyspace, args.switch, args.max_seconds)
        return 0 if result.complete else 1
    from projections.export import ExportFilter
    from projections.export_command import run_export

    wanted = ExportFilter(
        show_id=args.show,
        section_id=args.section,
        types=frozenset(args.type),
        since_ms=args.since,
        until_ms=args.until,
    )
    run_export(settings, wanted, args.format, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ticketing`` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"ticketing: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        return _dispatch(args, settings)
    except SettingsError as exc:
        print(f"ticketing: {exc}", file=sys.stderr)
        return 2
    except TicketingError as exc:
        print(f"ticketing: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _warn_of_default_secrets(settings: Settings) -> None:
    """Say loudly when anyone could sign admission tokens or webhooks."""
    for variable in settings.default_secrets():
        logger.warning(
            "a secret is at its published default: set it before a real sale",
            extra={"setting": variable},
        )


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "services":
        from infra import cluster, services

        entry = cluster.main if args.cluster else services.main
        return entry([args.action] + (["--reset"] if args.reset else []))
    if args.command == "topics":
        from infra.topics import ensure_topics

        print("created:", ", ".join(ensure_topics(settings)) or "nothing")
        return 0
    if args.command == "agent":
        from streams.worker import run

        run(settings)
        return 0
    if args.command == "projection":
        from projections.worker import main as projection_main

        projection_main(settings)
        return 0
    if args.command in ("gateway", "payments", "provider"):
        _warn_of_default_secrets(settings)
    if args.command == "gateway":
        from gateway.app import run as gateway_run
        from gateway.room import RoomConfig
        from gateway.room_cassandra import CassandraRoomStore, ensure_room_schema
        from gateway.room_fallback import FallbackRoomStore
        from infra.topics import ensure_topics
        from projections.live_readers import LiveReadModels
        from projections.reader import connect
        from projections.schema import ensure_schema

        RoomConfig.from_settings(settings)  # bad keys stop start-up here, clearly
        ensure_topics(settings)
        cluster, session = connect(settings)
        try:
            keyspace = settings.cassandra_keyspace
            ensure_schema(session, keyspace, settings)
            ensure_room_schema(session, keyspace)
            live = LiveReadModels(session, keyspace)
            rooms = FallbackRoomStore(CassandraRoomStore(session, keyspace))
            gateway_run(settings, live, live, rooms, live)
        finally:
            cluster.shutdown()
        return 0
    if args.command == "payments":
        from streams.payments.worker import run as payments_run

        payments_run(settings)
        return 0
    if args.command == "audit":
        from infra.audit import run as audit_run

        return audit_run(settings)
    if args.command == "capacity":
        from infra.capacity import Peak, load_figures, plan

        peak = Peak(
            args.requests_per_second,
            args.seats,
            args.minutes,
            args.places_per_hold,
            args.attempts_per_hold,
            args.commands_per_hold,
            args.headroom,
        )
        print("\n".join(plan(peak, load_figures())))
        return 0
    if args.command == "provider":
        from infra.provider_sim import Behaviour
        from infra.provider_sim import run as provider_run

        behaviour = Behaviour().changed({k: getattr(args, k) for k in _PROVIDER_KNOBS})
        provider_run(settings, behaviour, args.seed)
        return 0
    if args.command in ("replay", "export"):
        return _analyst(args, settings)
    if args.command == "partitions":
        return _partitions(args, settings)
    if args.command == "token":
        from infra.token_command import run as token_run

        return token_run(
            args, f"http://{settings.gateway_host}:{settings.gateway_port}"
        )
    if args.command == "settings":
        print(f"{'variable':<44} {'in effect':<22} {'default':<22} description")
        for name, value, default, description in settings.describe():
            print(f"{name:<44} {value:<22} {default:<22} {description}")
        return 0
    from infra.onsale import plan_from_args
    from infra.onsale import run as onsale_run

    return onsale_run(plan_from_args(args), Path(args.out) if args.out else None)


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())

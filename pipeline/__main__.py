"""Command line: `pipeline kafka|worker|ingest|tail|demo|schema` (see README)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.settings import Settings, SettingsError, load_settings

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
kafka_cli = typer.Typer(no_args_is_help=True, help="The local single-node Apache Kafka (KRaft).")
cli.add_typer(kafka_cli, name="kafka")


def _settings() -> Settings:
    """The settings, or a one-line message naming the bad ones and exit 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"settings: {exc}", err=True)
        raise typer.Exit(2) from None


def _local_kafka():
    from pipeline.kafka_local import LocalKafka, default_state_dir

    return LocalKafka(state_dir=default_state_dir())


@kafka_cli.command("start")
def kafka_start() -> None:
    """Start the broker on 127.0.0.1:9092 (idempotent); returns once it answers."""
    from pipeline.kafka_local import KafkaStartError

    try:
        status = _local_kafka().start()
    except KafkaStartError as exc:
        typer.echo(f"kafka did not start: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(status.detail)


@kafka_cli.command("stop")
def kafka_stop() -> None:
    """Stop the local broker if this project started it."""
    typer.echo("stopped" if _local_kafka().stop() else "not running")


@kafka_cli.command("status")
def kafka_status() -> None:
    """Say whether the broker answers; exit 1 when it does not."""
    status = _local_kafka().status()
    typer.echo(status.detail)
    raise typer.Exit(0 if status.running else 1)


@cli.command()
def worker() -> None:
    """Run the Faust worker with every stage; /metrics, /health, /ready on PIPELINE_WEB_PORT."""
    from pipeline.logs import configure_logging
    from pipeline.worker import WorkerStartError, run_worker

    settings = _settings()
    configure_logging(settings.log_level)  # model loading logs before Faust takes over
    try:
        run_worker(settings)
    except WorkerStartError as exc:
        typer.echo(f"worker: {exc}", err=True)
        raise typer.Exit(2) from None


@cli.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files (.txt .json .jsonl .html .xml) or -")],
    topic: Annotated[str | None, typer.Option(help="Topic (default: PIPELINE_TOPIC_RAW)")] = None,
) -> None:
    """Validate input files (or JSON lines on stdin) and produce them to the raw topic."""
    from pipeline.ingest import IngestError, RawRecord, records_from_path, records_from_stream
    from pipeline.kafka_io import produce

    settings = _settings()
    limit = settings.max_message_bytes
    warnings: list[str] = []
    try:
        records: list[RawRecord] = []
        for name in paths:
            if name == "-":
                records.extend(records_from_stream(sys.stdin.buffer, limit))
            else:
                records.extend(records_from_path(Path(name), limit, warnings))
    except IngestError as exc:
        typer.echo(f"ingest: {exc}", err=True)
        raise typer.Exit(2) from None
    for note in warnings:
        typer.echo(f"ingest: warning: {note}", err=True)
    sent = produce(settings, topic or settings.topic_raw, records, progress=sys.stderr.isatty())
    typer.echo(f"ingested {sent} article(s) into {topic or settings.topic_raw}")


@cli.command()
def tail(
    topic: Annotated[str | None, typer.Option(help="Topic (default: the enriched topic)")] = None,
    count: Annotated[int | None, typer.Option(help="Stop after N records")] = None,
    timeout: Annotated[float, typer.Option(help="Stop after S seconds without a record")] = 10.0,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest record")] = True,
    pretty: Annotated[
        bool, typer.Option(help="A short summary per record (what `make run` shows)")
    ] = False,
) -> None:
    """Print records of a topic as JSON lines, or summarised with --pretty."""
    from pipeline.kafka_io import consume
    from pipeline.summary import summarize_message

    settings = _settings()
    colour = sys.stdout.isatty()
    for record in consume(
        settings, topic or settings.topic_enriched, count, timeout, from_beginning
    ):
        if pretty:
            typer.echo(summarize_message(record, colour=colour) + "\n")
        elif record is None:  # a tombstone: still one JSON line
            typer.echo("null")
        else:
            typer.echo(record.decode("utf-8", "replace"))


@cli.command()
def demo(
    paths: Annotated[list[Path], typer.Argument(help="Articles to ingest")],
) -> None:
    """What `make run` does: broker, worker, ingest the samples, show the output; Ctrl-C stops."""
    from pipeline.demo import run_demo

    raise typer.Exit(run_demo(_settings(), paths))


@cli.command()
def schema() -> None:
    """Print the JSON Schemas of the input, output and DLQ records (docs/CONTRACT.md)."""
    import orjson

    from pipeline.records import json_schemas

    typer.echo(orjson.dumps(json_schemas(), option=orjson.OPT_INDENT_2).decode())


def main() -> None:
    cli()


if __name__ == "__main__":
    main()

"""`siftline weights OUT` and `siftline mix OUT`: domain weights and mixed shards of a run.

Defined apart from `siftline.cli.main` (which registers them) to keep that file small. Flags
are dotted overrides of the run's own `mixture:` section, as everywhere else in the CLI.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from siftline.cli.common import err, fail, origin_of
from siftline.cli.helptext import literal

OutArg = Annotated[str, typer.Argument(help="A finished run's output folder.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
QuietFlag = Annotated[bool, typer.Option("--quiet", help="No tables.")]


def weights_command(
    output: OutArg,
    tau: Annotated[float | None, typer.Option(
        "--tau", help="One temperature for all of training (instead of --schedule).")] = None,
    schedule: Annotated[str | None, typer.Option(
        "--schedule", help=literal("Phases START:END:TAU, comma-separated, covering 0..1; "
                                   "default the run's (Cooldown: 0:0.5:5,0.5:1:1)."))] = None,
    train_tokens: Annotated[str | None, typer.Option(
        "--train-tokens", help="Training budget: 1000000, 500M, 1B, 2T.")] = None,
    max_epochs: Annotated[float | None, typer.Option(
        "--max-epochs", help="Repetition limit per domain (default 4).")] = None,
    cap: Annotated[bool | None, typer.Option(
        "--cap/--no-cap", help="Cap domains at --max-epochs, give the rest to others.")] = None,
    tokenizer: Annotated[str | None, typer.Option(
        "--tokenizer", help="tokenizer.json or model folder to count tokens with.")] = None,
    chars_per_token: Annotated[float | None, typer.Option(
        "--chars-per-token", help="Estimate without a tokenizer (default 4.0).")] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="mixture.KEY=VALUE override.")] = None,
    quiet: QuietFlag = False, as_json: JsonFlag = False,
) -> None:
    """Compute domain sampling weights for a finished run and write OUT/weights.json."""
    from siftline.cli.mixture_render import warnings_text, weights_table
    from siftline.config import load_config, parse_set_options
    from siftline.errors import ConfigError
    from siftline.io.storage import Storage
    from siftline.job.reweigh import reweigh
    from siftline.outputs import load_finished_manifest

    try:
        if tau is not None and schedule is not None:
            raise ConfigError("give --tau or --schedule, not both")
        overrides: dict[str, Any] = dict(parse_set_options(sets or []))
        flags = {"schedule": schedule if tau is None else str(tau),
                 "train_tokens": train_tokens, "max_epochs": max_epochs, "cap": cap,
                 "tokenizer": tokenizer, "chars_per_token": chars_per_token}
        overrides.update({f"mixture.{k}": v for k, v in flags.items() if v is not None})
        storage = Storage()
        base = load_finished_manifest(output, storage)["config"].get("mixture", {})
        cfg = load_config({"mixture": base}, overrides, origin=origin_of(
            f"{output.rstrip('/')}/manifest.json", bool(overrides))).mixture
        doc = reweigh(output, cfg, storage)
    except ConfigError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(doc, indent=2))
    elif not quiet:
        err.print(weights_table(doc))
        for line in warnings_text(doc):
            err.print(line)
        err.print(f"wrote {output.rstrip('/')}/weights.json")


def mix_command(
    output: OutArg,
    phase: Annotated[list[int] | None, typer.Option(
        "--phase", help="Phase index (0 = first; repeatable); default every phase.")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Sampling seed (default mixture.seed).")] = None,
    tokens: Annotated[str | None, typer.Option(
        "--tokens", help="Tokens per phase (500M, 1B); default the phase's own budget.")] = None,
    shard_bytes: Annotated[str | None, typer.Option(
        "--shard-bytes", help="Target shard size (256MB); default output.shard_bytes.")] = None,
    quiet: QuietFlag = False, as_json: JsonFlag = False,
) -> None:
    """Write OUT/mix/phase-K/ shards drawn from the kept data by phase K's weights."""
    from pydantic import ByteSize, TypeAdapter, ValidationError

    from siftline.cli.mixture_render import mix_table
    from siftline.errors import ConfigError
    from siftline.io.storage import Storage
    from siftline.mixture.config import parse_token_count
    from siftline.mixture.mix import write_mix

    try:
        try:
            budget = parse_token_count(tokens) if tokens is not None else None
            size = TypeAdapter(ByteSize).validate_python(shard_bytes) if shard_bytes else None
        except (ValueError, ValidationError) as exc:
            raise ConfigError(f"--tokens/--shard-bytes: {exc}") from None
        if budget is not None and budget < 1 or size is not None and size < 1:
            raise ConfigError("--tokens and --shard-bytes must be positive")
        manifests = write_mix(output, Storage(), phase or None, seed=seed, tokens=budget,
                              shard_bytes=size)
    except ConfigError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(manifests, indent=2))
    elif not quiet:
        for manifest in manifests:
            err.print(mix_table(manifest))

"""`siftline config`: the resolved configuration, every key with its default and description.

The README's example shows the common keys; this prints all of them, from the model itself, for
the given file (or the defaults) with the same flags `run` takes applied, so what it prints is
what `run` would use.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from siftline.cli.common import (
    AddressOpt,
    ExecutorOpt,
    InputOpt,
    OutputOpt,
    SetOpt,
    StagesOpt,
    TargetOpt,
    fail,
    load,
    origin_of,
    overrides_of,
)
from siftline.config import PipelineConfig
from siftline.errors import ConfigError


def config_command(
    config: Annotated[str | None, typer.Argument(
        help="YAML config file; without one, the defaults.")] = None,
    inputs: InputOpt = None, output: OutputOpt = None, executor: ExecutorOpt = None,
    ray_address: AddressOpt = None, stages: StagesOpt = None, targets: TargetOpt = None,
    sets: SetOpt = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the resolved config as plain JSON (no comments).")] = False,
) -> None:
    """Print the resolved configuration as YAML: every key, its value and what it means."""
    from siftline.cli.config_render import MASK, config_yaml, has_secrets

    try:
        overrides = overrides_of(inputs, output, executor, ray_address, sets, targets)
        cfg = load(config, overrides, stages)
    except ConfigError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(cfg.public_dict(), indent=2))
        return
    header = [f"siftline configuration, resolved from "
              f"{origin_of(config, bool(overrides) or stages is not None)}.",
              "Every key, under its description [type; the default where the value differs].",
              "Load it back with `siftline run FILE` or `siftline.load_config(FILE)`."]
    if has_secrets(cfg):
        header.append(f"Secrets are masked ({MASK}): set them again before using this file.")
    print(config_yaml(cfg, PipelineConfig(), header), end="")

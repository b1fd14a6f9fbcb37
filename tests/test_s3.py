"""S3 inputs and outputs against a real S3 HTTP endpoint (moto's server on 127.0.0.1).

Every test gets its own bucket(s), and s3fs's cached filesystem instances (with their listing
caches) are dropped around each test, so no test sees another's objects or stale listings.
Credentials go through the config (``storage.s3``), never through the environment, unless a
test says otherwise; the environment is emptied of AWS settings so nothing reaches real AWS.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
import yaml
from helpers import read_data, tree_bytes, without_measurements, write_jsonl, write_parquet
from s3_fixtures import clear_ambient_aws
from typer.testing import CliRunner

import siftline.cli.main as cli
from siftline import ConfigError, load_config
from siftline.job.runner import run

ACCESS_KEY = "AKIDSIFTLINETEST"
SECRET_KEY = "s3cr3t/Do-Not+Leak-7f3a9c"
REGION = "us-east-1"
_bucket_numbers = itertools.count()


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_ambient_aws(monkeypatch, tmp_path)


@pytest.fixture(scope="module", autouse=True)
def fresh_s3fs_instances() -> Iterator[None]:
    """s3fs caches filesystem instances (and their listings) per set of options. Every test
    uses new buckets, so listings cached by an earlier test never apply; tests that change the
    environment or need a cold cache clear it themselves. Nothing survives this module."""
    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def client(endpoint: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"siftline-test-{next(_bucket_numbers):03d}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_storage(endpoint: str) -> dict[str, str]:
    return {"endpoint_url": endpoint, "region": REGION,
            "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}


def job(inputs: list[str], out_path: str, s3: dict[str, str], **sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "input": {"paths": inputs},
        "output": {"path": out_path},
        "executor": {"kind": "local"},
        "storage": {"s3": s3},
        "stages": {"exact_dedupe": {"partitions": 1}},  # fewer shuffle files: fewer requests
    }
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return data


# -- data --------------------------------------------------------------------------------------
def make_inputs(folder: Path, small: bool = False) -> list[Path]:
    """Three formats, duplicates within and across files, and one malformed line.

    `small` writes only the two JSON Lines files (fewer splits, so fewer S3 requests).
    """
    web = [{"id": f"web-{i:02d}", "text": f"alpha document number {i % 4}", "domain": "web"}
           for i in range(12)]
    code = [{"id": f"code-{i:02d}", "text": f"def f{i % 3}(): return {i % 3}", "domain": "code"}
            for i in range(9)]
    books = [{"id": f"book-{i:02d}", "text": f"alpha document number {i}", "domain": "books"}
             for i in range(6)]
    files = [
        write_jsonl(folder / "a.jsonl", [*web[:6], b"{not json", *web[6:], *books[:2]]),
        write_jsonl(folder / "b.jsonl", code),
    ]
    if small:
        return files
    return [
        *files,
        write_jsonl(folder / "c.jsonl.zst", books, compression="zstd"),
        write_parquet(folder / "d.parquet", [*books[:3], {"id": "p-1", "text": "parquet only",
                                                          "domain": "books"}]),
    ]


def upload_folder(client: Any, folder: Path, bucket: str, prefix: str) -> None:
    for path in sorted(folder.iterdir()):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())


def objects(client: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        obj["Key"]: client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        for obj in listed
    }


def rows(table: pa.Table) -> list[tuple[str, str, str]]:
    """Kept documents without the `source` column, which names where each one was read."""
    return sorted(zip(*(table.column(c).to_pylist() for c in ("id", "text", "domain")),
                      strict=True))


def assert_invariant(stats: dict[str, Any]) -> None:
    dropped = sum(stats["dropped"].values())
    assert stats["input_records"] == stats["quarantined"] + stats["kept"] + dropped
    assert stats["accounting"].endswith("holds")


def flat(text: str) -> str:
    """Output text without any whitespace, so a wrapped line cannot hide a leaked secret."""
    return "".join(text.split())


# -- S3 inputs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("s3_pattern", "local_pattern"),
    [("in/*.jsonl", "*.jsonl"), ("in", ""), ("in/", "")],
    ids=["glob", "folder", "folder-slash"],
)
def test_s3_input_reads_same_data_as_local(
    tmp_path: Path, client: Any, bucket: str, s3_storage: dict[str, str], s3_pattern: str,
    local_pattern: str,
) -> None:
    local_in = tmp_path / "in"
    make_inputs(local_in)
    upload_folder(client, local_in, bucket, "in")
    local_path = str(local_in / local_pattern) if local_pattern else str(local_in)

    local = run(load_config(job([local_path], str(tmp_path / "out_local"), s3_storage)))
    remote = run(load_config(job([f"s3://{bucket}/{s3_pattern}"], str(tmp_path / "out_s3"),
                                 s3_storage)))

    assert remote.status == local.status == "complete"
    assert without_measurements(remote.stats) == without_measurements(local.stats)
    assert_invariant(remote.stats)
    assert remote.stats["quarantined"] == 1
    assert remote.stats["dropped"].get("exact_duplicate", 0) > 0
    remote_data, local_data = read_data(tmp_path / "out_s3"), read_data(tmp_path / "out_local")
    assert rows(remote_data) == rows(local_data)
    assert remote_data.num_rows == remote.stats["kept"]
    assert all(s.startswith(f"s3://{bucket}/in/") for s in remote_data.column("source").to_pylist())
    formats = {entry["format"] for entry in remote.manifest["inputs"]}
    assert formats == ({"jsonl"} if "*" in s3_pattern else {"jsonl", "parquet"})
    if "*" not in s3_pattern:
        uris = [entry["uri"] for entry in remote.manifest["inputs"]]
        assert uris == [f"s3://{bucket}/in/{n}"
                        for n in ("a.jsonl", "b.jsonl", "c.jsonl.zst", "d.parquet")]


def test_s3_jsonl_split_into_byte_ranges_reads_every_record_once(
    tmp_path: Path, client: Any, bucket: str, s3_storage: dict[str, str]
) -> None:
    records = [{"id": f"r{i:04d}", "text": f"record {i} " + "x" * (i % 37)} for i in range(400)]
    path = write_jsonl(tmp_path / "in" / "big.jsonl", records)
    upload_folder(client, tmp_path / "in", bucket, "in")
    result = run(load_config(job([f"s3://{bucket}/in/big.jsonl"], str(tmp_path / "out"),
                                 s3_storage, input={"split_bytes": path.stat().st_size // 7})))
    assert len(result.manifest["splits"]) >= 7
    assert result.stats["input_records"] == result.stats["kept"] == 400
    assert sorted(read_data(tmp_path / "out").column("id").to_pylist()) == [
        r["id"] for r in records]


# -- S3 output ---------------------------------------------------------------------------------
def test_s3_output_matches_local_output_bytes(
    tmp_path: Path, client: Any, bucket: str, s3_storage: dict[str, str]
) -> None:
    make_inputs(tmp_path / "in", small=True)
    inputs = [str(tmp_path / "in")]
    local = run(load_config(job(inputs, str(tmp_path / "out"), s3_storage)))
    remote = run(load_config(job(inputs, f"s3://{bucket}/out", s3_storage)))

    assert remote.status == "complete"
    assert remote.output == f"s3://{bucket}/out"
    stored = objects(client, bucket, "out/")
    names = {key.removeprefix("out/") for key in stored}
    assert {"stats.json", "manifest.json"} <= names
    assert any(n.startswith("data/") for n in names)
    assert any(n.startswith("scored/") for n in names)
    assert not any(n.startswith("_work") for n in names), "scratch space must be removed"

    local_files = tree_bytes(tmp_path / "out")
    remote_files = {n: data for n, data in ((k.removeprefix("out/"), v) for k, v in stored.items())
                    if n.split("/", 1)[0] in ("data", "scored", "rejects")}
    assert remote_files == local_files
    assert any(n.startswith("data/") for n in local_files)

    stats = json.loads(stored["out/stats.json"])
    assert_invariant(stats)
    assert without_measurements(stats) == without_measurements(local.stats)
    manifest = json.loads(stored["out/manifest.json"])
    assert manifest["status"] == "complete"
    for shard in manifest["outputs"]["data"]:
        data = stored[f"out/{shard['path']}"]
        assert shard["bytes"] == len(data)
        assert shard["sha256"] == hashlib.sha256(data).hexdigest()
    kept = pa.concat_tables(
        pq.read_table(io.BytesIO(stored[f"out/{s['path']}"])) for s in manifest["outputs"]["data"]
    )
    assert kept.num_rows == stats["kept"]


def test_rerun_of_finished_s3_output_does_nothing(
    tmp_path: Path, client: Any, bucket: str, s3_storage: dict[str, str]
) -> None:
    make_inputs(tmp_path / "in", small=True)
    config = load_config(job([str(tmp_path / "in")], f"s3://{bucket}/out", s3_storage))
    first = run(config)
    before = {o["Key"]: (o["ETag"], o["LastModified"])
              for o in client.list_objects_v2(Bucket=bucket)["Contents"]}

    s3fs.S3FileSystem.clear_instance_cache()  # as a new process would see the bucket
    again = run(config)

    assert again.status == "already_complete"
    assert again.stats == first.stats
    after = {o["Key"]: (o["ETag"], o["LastModified"])
             for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert after == before


def test_overwrite_replaces_a_finished_s3_output_without_stale_shards(
    tmp_path: Path, client: Any, bucket: str, s3_storage: dict[str, str]
) -> None:
    make_inputs(tmp_path / "in", small=True)
    inputs, out = [str(tmp_path / "in")], f"s3://{bucket}/out"
    run(load_config(job(inputs, out, s3_storage, output={"shard_bytes": 30})))
    many = list(objects(client, bucket, "out/data/"))
    refused = load_config(job(inputs, out, s3_storage))
    with pytest.raises(ConfigError, match="--overwrite"):
        run(refused)
    replaced = run(refused, overwrite=True)
    assert replaced.status == "complete"
    stored = objects(client, bucket, "out/")
    data = sorted(k for k in stored if k.startswith("out/data/"))
    assert len(data) < len(many)
    assert data == sorted(f"out/{d['path']}" for d in replaced.manifest["outputs"]["data"])
    assert json.loads(stored["out/manifest.json"])["config_sha256"] == refused.sha256()
    assert not any(k.startswith("out/_work") for k in stored)


# -- fail fast ---------------------------------------------------------------------------------
def test_missing_input_bucket_fails_before_any_work(
    tmp_path: Path, s3_storage: dict[str, str]
) -> None:
    out = tmp_path / "out"
    config = load_config(job(["s3://no-such-input-bucket/in/*.jsonl"], str(out), s3_storage))
    with pytest.raises(ConfigError, match="no-such-input-bucket") as info:
        run(config)
    assert "does not exist" in str(info.value)
    assert not out.exists()


def test_missing_output_bucket_fails_before_any_work(
    tmp_path: Path, client: Any, bucket: str, s3_storage: dict[str, str]
) -> None:
    make_inputs(tmp_path / "in", small=True)
    upload_folder(client, tmp_path / "in", bucket, "in")
    config = load_config(job([f"s3://{bucket}/in"], "s3://no-such-output-bucket/out",
                             s3_storage))
    with pytest.raises(ConfigError, match="no-such-output-bucket") as info:
        run(config)
    assert "output.path" in str(info.value)
    assert set(objects(client, bucket)) == {f"in/{p.name}" for p in (tmp_path / "in").iterdir()}
    assert "no-such-output-bucket" not in {b["Name"] for b in client.list_buckets()["Buckets"]}


def test_missing_bucket_fails_validate_with_exit_2(
    tmp_path: Path, s3_storage: dict[str, str], wide_console: None
) -> None:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(yaml.safe_dump(job(["s3://no-such-input-bucket/x.jsonl"],
                                      str(tmp_path / "out"), s3_storage)))
    result = CliRunner().invoke(cli.app, ["validate", str(cfg)])
    assert result.exit_code == 2, result.output
    assert "no-such-input-bucket" in result.output
    assert SECRET_KEY not in flat(result.output)
    assert not (tmp_path / "out").exists()


def test_s3_output_prefix_with_unrelated_objects_is_rejected(
    tmp_path: Path, client: Any, bucket: str, s3_storage: dict[str, str]
) -> None:
    make_inputs(tmp_path / "in", small=True)
    client.put_object(Bucket=bucket, Key="out/unrelated.csv", Body=b"a,b\n")
    config = load_config(job([str(tmp_path / "in")], f"s3://{bucket}/out", s3_storage))
    with pytest.raises(ConfigError, match="unrelated.csv"):
        run(config)


# -- credentials -------------------------------------------------------------------------------
def test_credentials_never_leak(
    tmp_path: Path, client: Any, bucket: str, s3_storage: dict[str, str], wide_console: None
) -> None:
    make_inputs(tmp_path / "in", small=True)
    upload_folder(client, tmp_path / "in", bucket, "in")
    cfg = tmp_path / "job.yaml"
    cfg.write_text(yaml.safe_dump(job([f"s3://{bucket}/in"], f"s3://{bucket}/out", s3_storage)))
    runner = CliRunner()

    ok = runner.invoke(cli.app, ["run", str(cfg), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["status"] == "complete"
    shown = runner.invoke(cli.app, ["run", str(cfg)])  # already complete: tables, no JSON
    assert shown.exit_code == 0, shown.output
    valid = runner.invoke(cli.app, ["validate", str(cfg), "--output", f"s3://{bucket}/other"])
    assert valid.exit_code == 0, valid.output
    bad_in = runner.invoke(cli.app, ["run", str(cfg), "--input", "s3://no-such-bucket-in/x",
                                     "--output", str(tmp_path / "o1")])
    bad_out = runner.invoke(cli.app, ["run", str(cfg), "--output", "s3://no-such-bucket-out/o"])
    bad_key = runner.invoke(cli.app, ["run", str(cfg), "--set", "storage.s3.secret=x"])
    assert (bad_in.exit_code, bad_out.exit_code, bad_key.exit_code) == (2, 2, 2)
    assert "storage.s3.secret" in bad_key.output

    for result in (ok, shown, valid, bad_in, bad_out, bad_key):
        assert SECRET_KEY not in flat(result.output)
    stored = objects(client, bucket, "out/")
    for name in ("out/manifest.json", "out/stats.json"):
        assert SECRET_KEY.encode() not in stored[name]
    masked = json.loads(stored["out/manifest.json"])["config"]["storage"]["s3"]
    assert masked["secret_access_key"] == "**********"
    assert masked["access_key_id"] == "**********"
    assert masked["endpoint_url"] == s3_storage["endpoint_url"]

    for paths, output in ((["s3://no-such-bucket-in/x"], str(tmp_path / "o2")),
                          ([f"s3://{bucket}/in"], "s3://no-such-bucket-out/o")):
        with pytest.raises(ConfigError) as info:
            run(load_config(job(paths, output, s3_storage)))
        assert SECRET_KEY not in str(info.value)
        assert SECRET_KEY not in repr(info.value)


# -- inspect and select on an S3 output (credentials from the environment) ----------------------
def test_inspect_and_select_s3_output_with_environment_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: Any, bucket: str,
    s3_storage: dict[str, str], endpoint: str, wide_console: None,
    request: pytest.FixtureRequest,
) -> None:
    make_inputs(tmp_path / "in", small=True)
    upload_folder(client, tmp_path / "in", bucket, "in")
    first = run(load_config(job([f"s3://{bucket}/in"], f"s3://{bucket}/out", s3_storage)))
    duplicates = first.stats["dropped"]["exact_duplicate"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    s3fs.S3FileSystem.clear_instance_cache()  # instances built without these variables
    request.addfinalizer(s3fs.S3FileSystem.clear_instance_cache)  # nor keep them after
    runner = CliRunner()

    shown = runner.invoke(cli.app, ["inspect", f"s3://{bucket}/out"])
    assert shown.exit_code == 0, shown.output
    assert "holds" in shown.stdout and "books" in shown.stdout

    kept_all = runner.invoke(cli.app, ["select", f"s3://{bucket}/out", "--stages", "", "--json"])
    assert kept_all.exit_code == 0, kept_all.output
    stats = json.loads(kept_all.stdout)
    assert_invariant(stats)
    assert "exact_duplicate" not in stats["dropped"]
    assert stats["kept"] == first.stats["kept"] + duplicates
    assert json.loads(objects(client, bucket, "out/stats.json")["out/stats.json"]) == stats
    assert SECRET_KEY not in flat(shown.output + kept_all.output)
    assert SECRET_KEY.encode() not in objects(client, bucket, "out/manifest.json")[
        "out/manifest.json"]


def test_select_s3_output_with_config_credentials(
    tmp_path: Path, client: Any, bucket: str, s3_storage: dict[str, str], wide_console: None
) -> None:
    make_inputs(tmp_path / "in", small=True)
    first = run(load_config(job([str(tmp_path / "in")], f"s3://{bucket}/out", s3_storage)))
    cfg = tmp_path / "creds.yaml"
    cfg.write_text(yaml.safe_dump({"storage": {"s3": s3_storage}}))
    s3fs.S3FileSystem.clear_instance_cache()
    result = CliRunner().invoke(cli.app, ["select", f"s3://{bucket}/out", "--config", str(cfg),
                                          "--stages", "", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["kept"] == first.stats["kept"] + first.stats["dropped"]["exact_duplicate"]


# -- Ray ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("SIFTLINE_SKIP_RAY_TESTS") == "1", reason=(
    "SIFTLINE_SKIP_RAY_TESTS=1: skips the embedded Ray start (15-30 s on a 2-core machine)"))
def test_ray_executor_reads_s3_like_local_executor(
    tmp_path: Path, client: Any, bucket: str, s3_storage: dict[str, str]
) -> None:
    make_inputs(tmp_path / "in", small=True)
    upload_folder(client, tmp_path / "in", bucket, "in")
    inputs = [f"s3://{bucket}/in"]
    local = run(load_config(job(inputs, str(tmp_path / "out_local"), s3_storage)))
    on_ray = run(load_config(job(inputs, str(tmp_path / "out_ray"), s3_storage,
                                 executor={"kind": "ray", "num_workers": 1})))
    assert on_ray.status == "complete"
    assert on_ray.manifest["executor"]["kind"] == "ray"
    assert without_measurements(on_ray.stats) == without_measurements(local.stats)
    assert tree_bytes(tmp_path / "out_ray") == tree_bytes(tmp_path / "out_local")

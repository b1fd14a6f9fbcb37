"""Flaky and failing S3: a real S3 HTTP endpoint (moto's server on 127.0.0.1) behind a
fault-injecting proxy (`fault_proxy.FaultProxy`: 503s, connection resets, bodies cut off).

A job whose every request may fail transiently must finish with the bytes of an undisturbed
run; a storage outage must fail the job with an error naming the bucket, leave no partial
object under a final name, and a rerun must finish the job; a missing bucket or denied access
must fail at once (no retries), naming the bucket.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import s3fs
from botocore.exceptions import ClientError
from fault_proxy import FaultProxy
from helpers import without_measurements, write_jsonl, write_parquet
from s3_fixtures import clear_ambient_aws
from s3fs.errors import translate_boto_error

from siftline import ConfigError, load_config
from siftline.config import S3Config
from siftline.io.s3errors import (
    AccessDeniedError,
    BucketNotFoundError,
    StorageError,
    explain,
)
from siftline.io.storage import Storage, s3_options
from siftline.job.runner import run

ACCESS_KEY = "AKIDSIFTLINEFAULTS"
SECRET_KEY = "faults/s3cr3t+Never-Logged"
REGION = "us-east-1"
OUTPUTS = ("data/", "scored/", "rejects/")
_numbers = itertools.count()


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Nothing reaches real AWS, and no s3fs instance (with its listing cache) is shared."""
    clear_ambient_aws(monkeypatch, tmp_path)
    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"siftline-faults-{next(_numbers):03d}"
    client.create_bucket(Bucket=name)
    return name


def s3_config(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {"endpoint_url": endpoint, "region": REGION, "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY, **extra}


def job(inputs: list[str], out: str, s3: dict[str, Any]) -> dict[str, Any]:
    return {"input": {"paths": inputs, "split_bytes": 400}, "output": {"path": out},
            "executor": {"kind": "local"}, "storage": {"s3": s3},
            "stages": {"exact_dedupe": {"partitions": 2}}}


def upload_inputs(client: Any, bucket: str, folder: Path) -> None:
    """JSON Lines (split into byte ranges), zstd and Parquet inputs, duplicates, a bad line."""
    web = [{"id": f"w{i:02d}", "text": f"web page {i % 5} " + "lorem " * (i % 7), "domain": "web"}
           for i in range(30)]
    code = [{"id": f"c{i:02d}", "text": f"def f{i % 4}(): return {i % 4}", "domain": "code"}
            for i in range(12)]
    files = [write_jsonl(folder / "a.jsonl", [*web[:15], b"{broken", *web[15:]]),
             write_jsonl(folder / "b.jsonl.zst", code, compression="zstd"),
             write_parquet(folder / "c.parquet", web[:6])]
    for path in files:
        client.put_object(Bucket=bucket, Key=f"in/{path.name}", Body=path.read_bytes())


def objects(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])]
    return {k.removeprefix(prefix): client.get_object(Bucket=bucket, Key=k)["Body"].read()
            for k in keys}


def outputs(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    return {k: v for k, v in objects(client, bucket, prefix).items() if k.startswith(OUTPUTS)}


def assert_counts_add_up(stats: dict[str, Any]) -> None:
    dropped = sum(stats["dropped"].values())
    assert stats["input_records"] == stats["quarantined"] + stats["kept"] + dropped
    assert stats["accounting"].endswith("holds")


# -- the job through transient faults ----------------------------------------------------------
@pytest.mark.slow
def test_job_through_flaky_s3_matches_an_undisturbed_run(
    tmp_path: Path, client: Any, bucket: str, endpoint: str
) -> None:
    upload_inputs(client, bucket, tmp_path / "in")
    inputs = [f"s3://{bucket}/in"]
    clean = run(load_config(job(inputs, f"s3://{bucket}/clean", s3_config(endpoint))))
    s3fs.S3FileSystem.clear_instance_cache()

    with FaultProxy(endpoint, every=4) as proxy:
        flaky = run(load_config(job(inputs, f"s3://{bucket}/flaky", s3_config(proxy.url))))

    # every kind of fault was injected, on reads, listings and writes alike
    assert proxy.counts["503"] >= 5 and proxy.counts["reset"] >= 5
    assert proxy.counts["truncate"] >= 2
    assert flaky.status == clean.status == "complete"
    assert without_measurements(flaky.stats) == without_measurements(clean.stats)
    assert_counts_add_up(flaky.stats)
    assert flaky.stats["quarantined"] == 1 and flaky.stats["dropped"]["exact_duplicate"] > 0
    assert len(flaky.manifest["splits"]) > 3
    expected = outputs(client, bucket, "clean/")
    assert any(name.startswith("data/") for name in expected)
    assert outputs(client, bucket, "flaky/") == expected
    # nothing else under the output: no partial object, no scratch space left behind
    assert set(objects(client, bucket, "flaky/")) == set(objects(client, bucket, "clean/"))


@pytest.mark.slow
def test_outage_mid_job_fails_clearly_leaves_no_partial_shard_and_rerun_finishes(
    tmp_path: Path, client: Any, bucket: str, endpoint: str
) -> None:
    upload_inputs(client, bucket, tmp_path / "in")
    inputs = [f"s3://{bucket}/in"]
    with FaultProxy(endpoint) as counter:  # no faults: counts the requests of a whole run
        clean = run(load_config(job(inputs, f"s3://{bucket}/clean", s3_config(counter.url))))
    expected = outputs(client, bucket, "clean/")
    s3fs.S3FileSystem.clear_instance_cache()

    config = load_config(job(inputs, f"s3://{bucket}/cut", s3_config(endpoint)))
    # the store goes away 80% of the way through: some shards are written, some are not
    with FaultProxy(endpoint, outage_after=counter.counts["requests"] * 4 // 5) as proxy:
        config.storage.s3 = S3Config(**s3_config(proxy.url, max_attempts=2))
        started = time.monotonic()
        with pytest.raises(StorageError, match=f"s3://{bucket}/") as info:
            run(config)
        elapsed = time.monotonic() - started
    assert "storage.s3.max_attempts" in str(info.value)
    assert SECRET_KEY not in str(info.value)
    assert elapsed < 60, f"an outage with max_attempts=2 should fail fast, took {elapsed:.0f} s"
    partial = outputs(client, bucket, "cut/")
    written = [name for name in partial if name.startswith("data/")]
    assert 0 < len(written) < len([name for name in expected if name.startswith("data/")])
    assert all(expected.get(name) == data for name, data in partial.items()), (
        "an object under its final name differs from the undisturbed run's")

    s3fs.S3FileSystem.clear_instance_cache()
    config.storage.s3 = S3Config(**s3_config(endpoint))
    resumed = run(config)
    assert resumed.status == "complete"
    assert without_measurements(resumed.stats) == without_measurements(clean.stats)
    assert outputs(client, bucket, "cut/") == expected


# -- giving up, and permanent errors -----------------------------------------------------------
def test_persistent_503_gives_up_after_the_configured_attempts(
    client: Any, bucket: str, endpoint: str
) -> None:
    client.put_object(Bucket=bucket, Key="x.jsonl", Body=b'{"text": "a"}\n')
    with FaultProxy(endpoint, permanent_503=True) as proxy:
        storage = Storage(S3Config(**s3_config(proxy.url, max_attempts=2)))
        with pytest.raises(StorageError, match=rf"read s3://{bucket}/x.jsonl failed after 2"):
            storage.read_bytes(f"s3://{bucket}/x.jsonl")
        reads = proxy.counts["requests"]
        with pytest.raises(StorageError, match=rf"write s3://{bucket}/new.parquet"):
            storage.write_bytes(f"s3://{bucket}/new.parquet", b"PAR1" * 100)
    # botocore tried twice; s3fs re-drives a throttled (SlowDown) request once more at most
    assert 2 <= reads <= 4
    assert "new.parquet" not in objects(client, bucket, "")


def test_missing_bucket_fails_fast_naming_it(tmp_path: Path, endpoint: str) -> None:
    with FaultProxy(endpoint, every=3) as proxy:
        storage = Storage(S3Config(**s3_config(proxy.url)))
        started = time.monotonic()
        with pytest.raises(BucketNotFoundError, match="'no-such-bucket-xyz' does not exist"):
            storage.read_bytes("s3://no-such-bucket-xyz/in/a.jsonl")
        with pytest.raises(FileNotFoundError, match="no-such-bucket-xyz"):
            storage.find("s3://no-such-bucket-xyz/in/")
        config = load_config(job(["s3://no-such-bucket-xyz/in/*.jsonl"], str(tmp_path / "out"),
                                 s3_config(proxy.url)))
        with pytest.raises(ConfigError, match="no-such-bucket-xyz"):
            run(config)
        elapsed = time.monotonic() - started
    assert elapsed < 20, f"a missing bucket must not be retried with backoff ({elapsed:.0f} s)"
    assert not (tmp_path / "out").exists()


def test_a_missing_key_stays_a_plain_file_not_found(bucket: str, endpoint: str) -> None:
    storage = Storage(S3Config(**s3_config(endpoint)))
    assert not storage.exists(f"s3://{bucket}/nothing-here")
    with pytest.raises(FileNotFoundError) as info:
        storage.read_bytes(f"s3://{bucket}/nothing-here")
    assert not isinstance(info.value, StorageError)


@pytest.mark.parametrize(("code", "kind", "words"), [
    ("NoSuchBucket", BucketNotFoundError, "S3 bucket 'bkt' does not exist"),
    ("AccessDenied", AccessDeniedError, "access to S3 bucket 'bkt' denied"),
    ("InvalidAccessKeyId", AccessDeniedError, "access to S3 bucket 'bkt' denied"),
    ("SlowDown", StorageError, "failed after 3 attempts"),
    ("InternalError", StorageError, "failed after 3 attempts"),
])
def test_explain_names_the_bucket_and_keeps_the_exception_family(
    code: str, kind: type[Exception], words: str
) -> None:
    raw = ClientError({"Error": {"Code": code, "Message": "server says no"}}, "GetObject")
    translated = translate_boto_error(raw)  # what s3fs raises
    better = explain(translated, "read", "s3://bkt/in/a.jsonl", attempts=3)
    assert type(better) is kind and words in str(better) and "s3://bkt/in/a.jsonl" in str(better)
    assert isinstance(better, OSError)
    assert explain(ValueError("not storage"), "read", "s3://bkt/k", 3).__class__ is ValueError


def test_attempts_reach_botocore_and_s3fs_and_bad_values_name_the_key() -> None:
    s3 = S3Config(max_attempts=4, retry_mode="adaptive", endpoint_url="http://127.0.0.1:9")
    assert s3_options(s3)["config_kwargs"]["retries"] == {"max_attempts": 4, "mode": "adaptive"}
    assert Storage(s3).fs("s3://bkt/k").retries == 4
    for key, value in (("max_attempts", 0), ("retry_mode", "forever")):
        with pytest.raises(ConfigError, match=f"storage.s3.{key}"):
            load_config({"storage": {"s3": {key: value}}})

"""Config sections of the inputs and of storage: where documents come from, how to reach S3."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ByteSize, Field, SecretStr, field_validator

from siftline.sections import Section as _Section


class FieldMap(_Section):
    """Where the document model's columns come from in the source records."""

    text: str = Field("text", description="The field (or dotted path) holding the document's "
                      "text; a record without it is quarantined.")
    id: str = Field("id", description="The field (or dotted path) holding a document id; a "
                    "record without one gets SOURCE:POSITION (its byte offset in JSON Lines, its "
                    "row in Parquet or Arrow).")
    domain: str = Field("domain", description="A field or a dotted path such as metadata.domain.")
    domain_from_path: str | None = Field(
        None, description="Regex over the file path; its first group (or whole match) is the domain"
    )

    @field_validator("domain_from_path")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class InputConfig(_Section):
    paths: list[str] = Field(default_factory=lambda: ["demo://stdlib"], min_length=1,
                             description="Files, globs, folders, s3:// URIs, Hugging Face "
                             "dataset folders, or demo://stdlib (the built-in demo corpus).")
    format: Literal["auto", "jsonl", "parquet", "hf"] = Field(
        "auto", description="auto: each file's format from its name (.jsonl[.gz|.zst], "
        ".parquet, .arrow); jsonl or parquet: also fail on a file of another format; hf: read "
        "every file as Arrow (Hugging Face save_to_disk folders).")
    fields: FieldMap = Field(default_factory=FieldMap)
    split_bytes: ByteSize = Field(ByteSize(64_000_000), gt=0, description="Work unit: plain "
                                  "JSON Lines are cut into byte ranges, Parquet into row-group "
                                  "runs of this size (a compressed file is one split). Lower it "
                                  "to bound a worker's memory.")
    max_doc_bytes: ByteSize = Field(ByteSize(1_000_000), gt=0, description="Documents whose "
                                    "UTF-8 text is longer are dropped as too_long.")
    batch_bytes: ByteSize = Field(ByteSize(16 << 20), gt=0, description="Text per batch that "
                                  "a worker reads and scores at once (JSON Lines; Parquet and "
                                  "Arrow read 8192 rows): bounds its memory, and is how much "
                                  "a lost model-scoring worker redoes.")


class S3Config(_Section):
    endpoint_url: str | None = Field(None, description="An S3-compatible endpoint (MinIO, "
                                     "R2, ...); null: AWS's.")
    region: str | None = Field(None, description="The bucket's region; null: from the "
                               "environment or AWS configuration.")
    access_key_id: SecretStr | None = Field(None, description="Access key; null: the usual "
                                            "AWS credential chain (environment, profile, "
                                            "instance role). Masked in outputs.")
    secret_access_key: SecretStr | None = Field(None, description="Secret key paired with "
                                                "access_key_id. Masked in outputs.")
    session_token: SecretStr | None = Field(None, description="Session token of temporary "
                                            "credentials. Masked in outputs.")
    anon: bool = Field(False, description="Unsigned requests, for public buckets without "
                       "credentials.")
    max_attempts: int = Field(6, ge=1, le=20, description="Tries per S3 request (botocore: "
                              "exponential backoff with full jitter on 5xx, throttling and "
                              "connection errors) and per streamed body read (s3fs).")
    retry_mode: Literal["standard", "adaptive"] = Field("standard", description="botocore's "
                                                        "retry mode; adaptive also rate-limits "
                                                        "the client after throttling.")


class StorageConfig(_Section):
    s3: S3Config = Field(default_factory=S3Config)

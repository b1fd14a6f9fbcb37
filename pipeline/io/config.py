"""Config sections of the inputs and of storage: where documents come from, how to reach S3."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ByteSize, Field, SecretStr, field_validator

from siftline.sections import Section as _Section


class FieldMap(_Section):
    """Where the document model's columns come from in the source records."""

    text: str = "text"
    id: str = "id"
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
    paths: list[str] = Field(default_factory=lambda: ["demo://stdlib"], min_length=1)
    format: Literal["auto", "jsonl", "parquet", "hf"] = "auto"
    fields: FieldMap = Field(default_factory=FieldMap)
    split_bytes: ByteSize = Field(ByteSize(64_000_000), gt=0)
    max_doc_bytes: ByteSize = Field(ByteSize(1_000_000), gt=0)
    batch_bytes: ByteSize = Field(ByteSize(16 << 20), gt=0, description="Text per batch that "
                                  "a worker reads and scores at once (JSON Lines; Parquet and "
                                  "Arrow read 8192 rows): bounds its memory, and is how much "
                                  "a lost model-scoring worker redoes.")


class S3Config(_Section):
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    anon: bool = False
    max_attempts: int = Field(6, ge=1, le=20, description="Tries per S3 request (botocore: "
                              "exponential backoff with full jitter on 5xx, throttling and "
                              "connection errors) and per streamed body read (s3fs).")
    retry_mode: Literal["standard", "adaptive"] = Field("standard", description="botocore's "
                                                        "retry mode; adaptive also rate-limits "
                                                        "the client after throttling.")


class StorageConfig(_Section):
    s3: S3Config = Field(default_factory=S3Config)

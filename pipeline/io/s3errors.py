"""What an S3 failure means once the retries below us have given up, said in one clear line.

Retries are not done here. botocore retries every request (`storage.s3.max_attempts`, its
"standard" mode: exponential backoff with full jitter on 500/502/503/504, throttling codes such
as SlowDown, and connection errors); s3fs re-drives requests whose streamed body broke off
(incomplete reads, payload errors) and throttled ones, `max_attempts` times as well. What
reaches `Storage` after that is final: a permanent error (no such bucket, access denied, bad
credentials), which botocore never retries, so it surfaces after one request; or a transient
one that outlasted every attempt. This module names the bucket and the operation in both cases,
keeping the exception types callers test for (`FileNotFoundError`, `PermissionError`, `OSError`).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from typing import Any

MISSING_BUCKET_CODES = {"NoSuchBucket"}
DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId",
                "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "AccountProblem"}

TRANSPORT_MODULES = {"botocore", "aiobotocore", "aiohttp", "urllib3"}


class StorageError(OSError):
    """An S3 operation failed for good; the message names the bucket and the operation."""


class BucketNotFoundError(StorageError, FileNotFoundError):
    """The bucket does not exist (permanent: never retried)."""


class AccessDeniedError(StorageError, PermissionError):
    """Access to the bucket was denied or the credentials were refused (permanent)."""


def bucket_of(uri: str) -> str:
    return uri.split("://", 1)[-1].split("/", 1)[0]


def error_code(exc: BaseException) -> str | None:
    """The S3 error code behind an exception (s3fs keeps botocore's ClientError as the cause)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        current = current.__cause__ or current.__context__
    return None


def explain(exc: BaseException, op: str, uri: str, attempts: int) -> BaseException:
    """The exception to raise for `exc` from `op` on `uri`: a clearer one, or `exc` itself.

    A missing key stays the caller's plain FileNotFoundError (existence checks rely on it).
    """
    if isinstance(exc, StorageError):
        return exc
    bucket, code = bucket_of(uri), error_code(exc)
    if code in MISSING_BUCKET_CODES:
        return BucketNotFoundError(errno.ENOENT, f"S3 bucket {bucket!r} does not exist "
                                   f"({op} {uri})")
    if code in DENIED_CODES or (code is None and isinstance(exc, PermissionError)):
        return AccessDeniedError(errno.EACCES, f"access to S3 bucket {bucket!r} denied "
                                 f"({op} {uri}): {code or exc}")
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError
                  | FileExistsError):
        return exc
    transport = type(exc).__module__.split(".", 1)[0] in TRANSPORT_MODULES
    if isinstance(exc, OSError | ConnectionError | TimeoutError) or code or transport:
        return StorageError(exc.errno if isinstance(exc, OSError) and exc.errno else errno.EIO,
                            f"S3 {op} {uri} failed after {attempts} attempts per request "
                            f"(storage.s3.max_attempts): {exc or type(exc).__name__}")
    return exc


class ExplainedFile:
    """A remote file handle whose reads raise `explain`ed errors, delegating everything else.

    Readers keep an S3 handle open and read from it long after `Storage.open` returned, so the
    final error of a broken-off read would otherwise surface as a bare transport error.
    """

    def __init__(self, handle: Any, op: str, uri: str, attempts: int) -> None:
        self._handle, self._where = handle, (op, uri, attempts)

    def _guard(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            better = explain(exc, *self._where)
            if better is exc:
                raise
            raise better from exc

    def read(self, *args: Any) -> Any:
        return self._guard(self._handle.read, *args)

    def readinto(self, buffer: Any) -> Any:
        return self._guard(self._handle.readinto, buffer)

    def readline(self, *args: Any) -> Any:
        return self._guard(self._handle.readline, *args)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.readline, self._handle.read(0))

    def __enter__(self) -> ExplainedFile:
        self._handle.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._handle.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

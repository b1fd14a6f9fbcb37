"""Filesystems behind URIs (local paths and s3://), and writes that are all-or-nothing.

Everything that touches bytes goes through fsspec here, so readers, writers and the run state
never care whether a path is local or on S3. A write lands under its final name only when it is
complete: locally a temporary file is renamed into place, on S3 the object appears when its
(single or multipart) upload completes.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import fsspec

from siftline.config import S3Config
from siftline.io.s3errors import ExplainedFile, explain

T = TypeVar("T")


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def s3_options(s3: S3Config) -> dict[str, Any]:
    """fsspec/s3fs keyword arguments; secrets are unwrapped here and nowhere else."""
    opts: dict[str, Any] = {"anon": s3.anon}
    client: dict[str, Any] = {}
    if s3.endpoint_url:
        client["endpoint_url"] = s3.endpoint_url
    if s3.region:
        client["region_name"] = s3.region
    if client:
        opts["client_kwargs"] = client
    if s3.access_key_id:
        opts["key"] = s3.access_key_id.get_secret_value()
    if s3.secret_access_key:
        opts["secret"] = s3.secret_access_key.get_secret_value()
    if s3.session_token:
        opts["token"] = s3.session_token.get_secret_value()
    # botocore retries each request (backoff with full jitter); see pipeline/io/s3errors.py
    opts["config_kwargs"] = {"retries": {"max_attempts": s3.max_attempts, "mode": s3.retry_mode}}
    return opts


@dataclass(frozen=True)
class PendingFile:
    """A local file written whole under a temporary name, neither durable nor visible yet."""

    tmp: str
    uri: str

    def commit(self) -> None:
        """fsync it, then give it its name: under that name it is whole and durable."""
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.uri)


def temp_name(uri: str) -> str:
    """Beside `uri`, hidden, unique: `.NAME.HEX.tmp` (what `remove_temp_files` clears)."""
    parent = os.path.dirname(uri) or "."
    return os.path.join(parent, f".{os.path.basename(uri)}.{uuid.uuid4().hex}.tmp")


@contextlib.contextmanager
def _temp_file(uri: str) -> Iterator[tuple[str, IO[bytes]]]:
    """A new local file under `temp_name(uri)`, removed again if the block fails."""
    os.makedirs(os.path.dirname(uri) or ".", exist_ok=True)
    tmp = temp_name(uri)
    try:
        with open(tmp, "wb") as handle:
            yield tmp, handle
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class Storage:
    """A filesystem plus the S3 options to rebuild it in another process (it is pickled to Ray)."""

    def __init__(self, s3: S3Config | None = None) -> None:
        self.s3 = s3 or S3Config()
        self._fs: dict[str, fsspec.AbstractFileSystem] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"s3": self.s3}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["s3"])

    def fs(self, uri: str) -> fsspec.AbstractFileSystem:
        protocol = uri.split("://", 1)[0] if is_remote(uri) else "file"
        if protocol not in self._fs:
            if protocol in ("s3", "s3a"):
                fs = fsspec.filesystem("s3", **s3_options(self.s3))
                fs.retries = self.s3.max_attempts  # s3fs's re-reads of a broken-off body
                self._fs[protocol] = fs
            else:
                self._fs[protocol] = fsspec.filesystem(protocol)
        return self._fs[protocol]

    def _call(self, op: str, uri: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one filesystem call; on S3 a final failure becomes a clear error (s3errors)."""
        if not is_remote(uri):
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            better = explain(exc, op, uri, self.s3.max_attempts)
            if better is exc:
                raise
            raise better from exc

    # -- queries -------------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        return self._call("exists", uri, self.fs(uri).exists, uri)

    def isdir(self, uri: str) -> bool:
        return self._call("isdir", uri, self.fs(uri).isdir, uri)

    def info(self, uri: str) -> dict[str, Any]:
        return self._call("info", uri, self.fs(uri).info, uri)

    def size(self, uri: str) -> int:
        return int(self.info(uri)["size"])

    def bucket_problem(self, uri: str) -> str | None:
        """Why the S3 bucket of `uri` cannot be used (missing, denied, unreachable), or None."""
        bucket = uri.split("://", 1)[1].split("/", 1)[0]
        try:
            self.fs(uri).ls(bucket, detail=False)
        except FileNotFoundError:
            return f"bucket {bucket!r} does not exist"
        except PermissionError:
            return f"access to bucket {bucket!r} denied"
        except OSError as exc:
            return f"cannot reach bucket {bucket!r}: {exc}"
        return None

    def fingerprint(self, uri: str) -> str:
        """Size and modification stamp (ETag on S3): how a run notices an input that changed."""
        info = self.info(uri)
        stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
        return f"{int(info.get('size') or 0)}:{stamp}"

    def glob(self, pattern: str) -> list[str]:
        fs = self.fs(pattern)
        found = self._call("list", pattern, fs.glob, pattern)
        return sorted(self._with_protocol(pattern, p) for p in found)

    def find(self, uri: str) -> list[str]:
        """All files under a folder, recursively, sorted."""
        fs = self.fs(uri)
        found = self._call("list", uri, fs.find, uri)
        return sorted(self._with_protocol(uri, p) for p in found)

    @staticmethod
    def _with_protocol(like: str, path: str) -> str:
        if is_remote(like) and "://" not in path:
            return f"{like.split('://', 1)[0]}://{path}"
        return path

    # -- reads ---------------------------------------------------------------------------------
    def open(self, uri: str, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        handle = self._call("open", uri, self.fs(uri).open, uri, mode, **kwargs)
        if is_remote(uri) and "r" in mode:
            return ExplainedFile(handle, "read", uri, self.s3.max_attempts)  # type: ignore
        return handle

    def read_bytes(self, uri: str, start: int | None = None, end: int | None = None) -> bytes:
        return self._call("read", uri, self.fs(uri).cat_file, uri, start=start, end=end)

    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode("utf-8")

    # -- writes --------------------------------------------------------------------------------
    def makedirs(self, uri: str) -> None:
        if not is_remote(uri):
            os.makedirs(uri, exist_ok=True)

    @contextlib.contextmanager
    def atomic_write(self, uri: str, durable: bool = True) -> Iterator[IO[bytes]]:
        """Yield a binary file that appears under `uri` only if the block completes.

        `durable=False` skips the fsync: the file still appears whole or not at all to any
        process (a kill -9 loses nothing written to the page cache), but a power cut may
        leave it short. That is for scratch files large enough for the flush to cost seconds,
        whose readers check them on resume (see `job.score`).
        """
        if is_remote(uri):
            handle = self._call("write", uri, self.fs(uri).open, uri, "wb")
            try:
                yield handle
                self._call("write", uri, handle.close)  # the PUT (or multipart completion)
            except BaseException:
                handle.discard()  # abort the upload: no partial object under the final name
                handle.closed = True
                raise
            return
        with _temp_file(uri) as (tmp, handle):
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
            handle.close()
            os.replace(tmp, uri)

    def write_bytes(self, uri: str, data: bytes | memoryview, durable: bool = True) -> None:
        self.write_stream(uri, lambda handle: handle.write(data), durable)

    def write_pending(self, uri: str, data: bytes | memoryview) -> PendingFile | None:
        """`data` under a temporary name, made durable and named later (`PendingFile.commit`),
        so that the disk's flush can overlap other work. An S3 PUT is atomic and durable: it
        is done now, and there is nothing to commit (None)."""
        if is_remote(uri):
            self.write_bytes(uri, data)
            return None
        with _temp_file(uri) as (tmp, handle):
            handle.write(data)
        return PendingFile(tmp, uri)

    def write_stream(self, uri: str, produce: Callable[[IO[bytes]], Any],
                     durable: bool = True) -> None:
        """A file that appears under `uri` whole, once `produce` has written it to the handle
        and returned; for one too large to serialise in memory first, `produce` streams it."""
        with self.atomic_write(uri, durable) as handle:
            produce(handle)

    def delete(self, uri: str, recursive: bool = False) -> None:
        fs = self.fs(uri)
        if self.exists(uri):
            self._call("delete", uri, fs.rm, uri, recursive=recursive)


def join(base: str, *parts: str) -> str:
    """Join URI parts with '/', for local paths and s3:// alike."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out

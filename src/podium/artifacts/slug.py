"""Slugs: gzipped tarballs holding an app under ``app/``, checked before anything is unpacked.

``inspect_slug`` streams the whole archive once, writing nothing, and refuses it on the
first problem: a path that leaves ``app/``, a link that points out of it, a device or a
setuid bit, too many entries or bytes, a gzip bomb, a missing or broken Procfile or
app.json. ``unpack_slug`` inspects, then extracts into a directory that appears whole or
not at all.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from podium.artifacts.appjson import AppJson, parse_app_json
from podium.artifacts.procfile import RELEASE, parse_procfile
from podium.config import Settings
from podium.errors import Conflict, Invalid, NotFound, TooLarge

PROCFILE = "app/Procfile"
APP_JSON = "app/app.json"
REQUIREMENTS = "app/requirements.txt"
MANIFEST_MAX_BYTES = 1024 * 1024
"""Procfile and app.json are read into memory, so each is held to this size."""
RATIO_FLOOR = 1024 * 1024
"""The ratio limit applies once a slug unpacks past this: a tiny slug of repetitive text
compresses very well and is no bomb."""
ENTRY_OVERHEAD = 4096
"""Tar bytes allowed per entry on top of file contents (headers, long names, padding)."""
MAX_SYMLINK_HOPS = 40
TAR_HEADER_MAX_BYTES = 64 * 1024
"""PAX extended headers and GNU long names and links are read whole by tarfile: each is
held to this size, checked from its 512-byte header before its data is read."""
PAX_DIGITS_MAX = 64
"""Longest run of digits a PAX header may hold: tarfile before Python 3.11.10 searches it
with a regex that backtracks over digit runs (CVE-2024-6232), quadratic in their length."""
_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (PAX_DIGITS_MAX + 1))
_EXTENDED_HEADERS = {
    tarfile.XHDTYPE: "PAX extended header", tarfile.XGLTYPE: "PAX global header",
    tarfile.SOLARIS_XHDTYPE: "Solaris extended header",
    tarfile.GNUTYPE_LONGNAME: "GNU long name", tarfile.GNUTYPE_LONGLINK: "GNU long link name",
}
HOW_TO_BUILD = "a slug is a gzipped tar: tar czf slug.tgz ./app"
_SPECIAL_BITS = 0o7000  # setuid, setgid, sticky
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class SlugLimits:
    """The sizes past which a slug is refused, each checked before anything is unpacked."""

    max_bytes: int
    max_entries: int
    max_unpacked_bytes: int
    max_ratio: float
    max_health_wait: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SlugLimits:
        """The limits configured by ``PODIUM_SLUG_MAX_*``."""
        return cls(
            max_bytes=settings.slug_max_bytes,
            max_entries=settings.slug_max_entries,
            max_unpacked_bytes=settings.slug_max_unpacked_bytes,
            max_ratio=settings.slug_max_ratio,
            max_health_wait=settings.health_wait_max,
        )


@dataclass(frozen=True)
class Slug:
    """What inspecting a slug learned about it."""

    digest: str  # "sha256:<hex>" of the compressed bytes
    size: int  # compressed bytes
    unpacked_size: int  # bytes of file contents
    entries: int
    processes: dict[str, str]  # from the Procfile, "release" included
    app_json: AppJson
    requirements_hash: str | None  # sha256 hex of app/requirements.txt


def inspect_slug(path: Path, limits: SlugLimits) -> Slug:
    """Read the whole archive without writing anything; raise Invalid/TooLarge on the first problem."""
    return _inspect(path, limits)[0]


def unpack_slug(path: Path, dest: Path, limits: SlugLimits) -> Slug:
    """Inspect the slug, then extract it so that ``dest/app/Procfile`` exists.

    ``dest`` must not exist yet. Extraction goes into a temporary directory beside it,
    renamed to ``dest`` at the end, so a failure leaves nothing half-written. The second
    read must see the very entries and bytes the inspection passed, and tarfile's
    ``data`` filter stands behind our own checks.
    """
    if dest.exists() or dest.is_symlink():
        raise Conflict(f"{dest}: already exists")
    slug, inspection = _inspect(path, limits)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".unpacking", dir=dest.parent))
    try:
        with _open_stream(path, inspection.budget()) as (tar, stream):
            tar.extractall(staging, members=inspection.replay(tar, stream), filter="data")
            stream.drain()
        if stream.digest != slug.digest:
            raise Conflict("slug: the file changed while it was being unpacked")
        staging.chmod(0o755)
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return slug


def _inspect(path: Path, limits: SlugLimits) -> tuple[Slug, _Inspection]:
    size = _check_file(path, limits)
    inspection = _Inspection(limits, size)
    with _open_stream(path, inspection.budget()) as (tar, stream):
        for member in tar:
            stream.entry = member.name
            name = inspection.add(member)
            stream.budget = inspection.budget()
            if name in (PROCFILE, APP_JSON, REQUIREMENTS) and member.isreg():
                content = tar.extractfile(member)  # None only for entries that hold no data
                if content is not None:
                    inspection.read_manifest(name, content)
        stream.entry = "slug"
        stream.drain()
    return inspection.finish(stream.digest), inspection


def _check_file(path: Path, limits: SlugLimits) -> int:
    """Refuse what is too big or plainly not a gzip before decompressing a byte."""
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(512)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    if size > limits.max_bytes:
        raise TooLarge(
            f"slug: {size} bytes compressed, over the limit of {limits.max_bytes} (PODIUM_SLUG_MAX_BYTES)"
        )
    if not head:
        raise Invalid(f"slug: empty file; {HOW_TO_BUILD}")
    if head.startswith(b"\x1f\x8b"):
        return size
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise Invalid(f"slug: a zip archive; {HOW_TO_BUILD}")
    if head[257:262] == b"ustar":
        raise Invalid(f"slug: an uncompressed tar; it must be gzip-compressed ({HOW_TO_BUILD})")
    raise Invalid(f"slug: not gzip data; {HOW_TO_BUILD}")


class _Hashed:
    """The compressed bytes as gzip reads them, hashed on the way."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha.update(data)
        return data

    def seek(self, offset: int, /) -> int:
        raise io.UnsupportedOperation("a slug is read once, forward only")


class _Inflated:
    """The tar stream inside the gzip, counted as it is inflated.

    Reading stops with ``TooLarge`` as soon as more comes out than ``budget`` allows, so
    a bomb costs at most ``budget`` bytes of work and never sits in memory whole.
    """

    def __init__(self, raw: IO[bytes], budget: int) -> None:
        self._hashed = _Hashed(raw)
        self._gzip = gzip.GzipFile(fileobj=self._hashed, mode="rb")
        self.inflated = 0
        self.budget = budget
        self.entry = "slug"  # the entry being read, for error messages

    def read(self, size: int = -1) -> bytes:
        allowed = self.budget - self.inflated + 1
        data = self._gzip.read(allowed if size < 0 else min(size, allowed))
        self.inflated += len(data)
        if self.inflated > self.budget:
            raise TooLarge(
                f"{self.entry}: the archive inflates past {self.budget} bytes of tar data "
                "(gzip bomb? see PODIUM_SLUG_MAX_RATIO)"
            )
        return data

    def drain(self) -> None:
        """Read to the very end, so the gzip checksum, length and whole digest are checked."""
        while self.read(_CHUNK):
            pass
        while self._hashed.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return f"sha256:{self._hashed.sha.hexdigest()}"


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar header that refuses an oversized extended header before tarfile reads its data.

    ``frombuf`` parses one raw 512-byte header; tarfile then reads the data of a PAX or
    GNU long-name header into memory whole, so the size must be checked here, first.
    """

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _BoundedTarInfo:
        header = super().frombuf(buf, encoding, errors)
        kind = _EXTENDED_HEADERS.get(header.type)
        if kind is not None and header.size > TAR_HEADER_MAX_BYTES:
            raise Invalid(
                f"slug: a {kind} of {header.size} bytes, over the limit of {TAR_HEADER_MAX_BYTES}; "
                "paths and link targets this long are not allowed"
            )
        return header

    def _proc_pax(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        """Check the PAX data (already bounded in size) before tarfile's own parsing reads it."""
        stream = tarfile.fileobj
        assert stream is not None
        data = stream.read(self._block(self.size))  # type: ignore[attr-defined]
        if _LONG_DIGITS.search(data):
            raise Invalid(f"slug: a PAX extended header with a run of more than {PAX_DIGITS_MAX} digits")
        tarfile.fileobj = _Replay(data, stream)  # type: ignore[assignment]
        try:
            return super()._proc_pax(tarfile)  # type: ignore[misc,no-any-return]
        finally:
            tarfile.fileobj = stream


class _Replay:
    """Bytes already read from a stream, served again before the rest of the stream."""

    def __init__(self, data: bytes, stream: Any) -> None:
        self._data = data
        self._stream: IO[bytes] = stream  # tarfile's own stream object, which reads and tells as a file does

    def read(self, size: int = -1) -> bytes:
        if self._data:
            head, self._data = (self._data, b"") if size < 0 else (self._data[:size], self._data[size:])
            return head if len(head) == size or size < 0 else head + self._stream.read(size - len(head))
        return self._stream.read(size)

    def tell(self) -> int:
        return self._stream.tell() - len(self._data)


@contextmanager
def _open_stream(path: Path, budget: int) -> Iterator[tuple[tarfile.TarFile, _Inflated]]:
    """Open the slug as a forward-only tar stream; report broken data as ``Invalid``."""
    with path.open("rb") as raw:
        stream = _Inflated(raw, budget)
        try:
            # typeshed asks for a seekable, writable file even in stream mode, which needs neither.
            with tarfile.open(  # type: ignore[call-overload]
                fileobj=stream, mode="r|", tarinfo=_BoundedTarInfo
            ) as tar:
                yield tar, stream
        except EOFError:
            raise Invalid(f"{stream.entry}: the archive ends early (truncated upload?)") from None
        except (gzip.BadGzipFile, zlib.error) as err:
            raise Invalid(f"{stream.entry}: corrupt gzip data ({err})") from None
        except RecursionError:  # extended headers chained one after another, each one small
            raise Invalid(f"{stream.entry}: too many extended tar headers in a row") from None
        except tarfile.TarError as err:
            where = "slug: not a tar archive inside the gzip" if stream.entry == "slug" else stream.entry
            raise Invalid(f"{where}: {err}") from None


@dataclass(frozen=True)
class _Seen:
    """An entry as inspection saw it; extraction must meet the same one."""

    raw: str
    kind: str  # "dir", "file", "symlink" or "hardlink"
    size: int
    mode: int
    linkname: str


class _Inspection:
    """Everything learned while streaming through the archive once."""

    def __init__(self, limits: SlugLimits, compressed_size: int) -> None:
        self.limits = limits
        self.size = compressed_size
        self.seen: dict[str, _Seen] = {}  # normalized name -> entry, in archive order
        self.unpacked = 0
        self.manifests: dict[str, str] = {}
        self.requirements_hash: str | None = None

    def budget(self) -> int:
        """Tar bytes the stream may inflate to, given the entries seen so far."""
        content = min(max(self.limits.max_ratio * self.size, RATIO_FLOOR), self.limits.max_unpacked_bytes)
        return int(content) + ENTRY_OVERHEAD * (len(self.seen) + 1) + 2 * tarfile.RECORDSIZE

    def add(self, member: tarfile.TarInfo) -> str:
        """Check one entry from its header alone; return its normalized name."""
        raw, limits = member.name, self.limits
        if len(self.seen) >= limits.max_entries:
            raise TooLarge(f"{raw}: more than {limits.max_entries} entries (PODIUM_SLUG_MAX_ENTRIES)")
        name = _normalize(raw, "path")
        kind = _kind(member)
        if name.split("/")[0] != "app" and not (name == "" and kind == "dir"):
            raise Invalid(f"{raw}: outside app/; everything in a slug lives under app/")
        if name == "app" and kind != "dir":
            raise Invalid(f"{raw}: app must be a directory")
        if member.mode & _SPECIAL_BITS:
            raise Invalid(f"{raw}: setuid, setgid and sticky bits are not allowed (mode {member.mode:o})")
        if name in self.seen:
            raise Invalid(f"{raw}: appears twice in the archive")
        if kind == "symlink" and member.linkname.startswith("/"):
            raise Invalid(f"{raw}: symlink to {member.linkname} points outside app/")
        if kind == "hardlink":
            target = _normalize(member.linkname, "hard link")
            if not target.startswith("app/") or target not in self.seen:
                raise Invalid(f"{raw}: hard link to {member.linkname} points outside app/ or ahead of itself")
            if self.seen[target].kind != "file":
                raise Invalid(f"{raw}: hard link to {member.linkname}, which is not a regular file")
        if kind == "file":
            self._count(raw, member.size)
        self.seen[name] = _Seen(raw, kind, member.size, member.mode, member.linkname)
        return name

    def _count(self, raw: str, size: int) -> None:
        self.unpacked += size
        limits = self.limits
        if self.unpacked > limits.max_unpacked_bytes:
            raise TooLarge(
                f"{raw}: the slug would unpack to more than {limits.max_unpacked_bytes} bytes "
                "(PODIUM_SLUG_MAX_UNPACKED_BYTES)"
            )
        if self.unpacked > RATIO_FLOOR and self.unpacked > limits.max_ratio * self.size:
            raise TooLarge(
                f"{raw}: the slug would unpack to {self.unpacked} bytes, over {limits.max_ratio:g} times "
                f"its compressed size of {self.size} (gzip bomb? PODIUM_SLUG_MAX_RATIO)"
            )

    def read_manifest(self, name: str, content: IO[bytes]) -> None:
        """Keep the Procfile and app.json text; hash requirements.txt as it streams past."""
        if name == REQUIREMENTS:
            sha = hashlib.sha256()
            while chunk := content.read(_CHUNK):
                sha.update(chunk)
            self.requirements_hash = sha.hexdigest()
            return
        data = content.read(MANIFEST_MAX_BYTES + 1)
        if len(data) > MANIFEST_MAX_BYTES:
            raise TooLarge(f"{name}: larger than {MANIFEST_MAX_BYTES} bytes")
        try:
            self.manifests[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(f"{name}: not UTF-8 text") from None

    def finish(self, digest: str) -> Slug:
        """The checks that need every entry: links, parents, Procfile and app.json."""
        links = {name: seen.linkname for name, seen in self.seen.items() if seen.kind == "symlink"}
        for name, seen in self.seen.items():
            _check_parents(name, seen.raw, self.seen)
            if seen.kind == "symlink":
                _check_symlink(name, seen, links)
        for name in (PROCFILE, APP_JSON, REQUIREMENTS):
            if name in self.seen and self.seen[name].kind != "file":
                raise Invalid(f"{name}: must be a regular file, not a {self.seen[name].kind}")
        if PROCFILE not in self.manifests:
            raise Invalid(f"{PROCFILE}: missing; a slug needs a Procfile listing its processes")
        processes = parse_procfile(self.manifests[PROCFILE], source=PROCFILE)
        app_json = AppJson()
        if APP_JSON in self.manifests:
            app_json = parse_app_json(self.manifests[APP_JSON], source=APP_JSON)
            app_json.check_bounds(max_health_wait=self.limits.max_health_wait, source=APP_JSON)
        for kind in app_json.formation:
            if kind not in processes or kind == RELEASE:
                raise Invalid(f"{APP_JSON}: formation.{kind}: no such process type in the Procfile")
        return Slug(
            digest=digest,
            size=self.size,
            unpacked_size=self.unpacked,
            entries=len(self.seen),
            processes=processes,
            app_json=app_json,
            requirements_hash=self.requirements_hash,
        )

    def replay(self, tar: tarfile.TarFile, stream: _Inflated) -> Iterator[tarfile.TarInfo]:
        """The archive's entries again, each required to match what inspection passed."""
        expected = iter(self.seen.values())
        for member in tar:
            stream.entry = member.name
            seen = next(expected, None)
            again = _Seen(member.name, _kind(member), member.size, member.mode, member.linkname)
            if seen != again:
                raise Conflict(f"{member.name}: the slug changed while it was being unpacked")
            yield member
        if next(expected, None) is not None:
            raise Conflict("slug: the file changed while it was being unpacked")


def _normalize(raw: str, what: str) -> str:
    """``./app//x/`` → ``app/x``; refuse absolute paths and any ``..``."""
    if raw.startswith("/"):
        raise Invalid(f"{raw}: absolute {what}; entries must be relative, under app/")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        depth = 0
        for part in parts:
            depth += -1 if part == ".." else 1
            if depth < 0:
                raise Invalid(f"{raw}: {what} escapes the slug")
        raise Invalid(f"{raw}: '..' is not allowed in a {what}")
    return "/".join(parts)


def _kind(member: tarfile.TarInfo) -> str:
    if member.ischr() or member.isblk() or member.isfifo():
        raise Invalid(f"{member.name}: device files and FIFOs are not allowed")
    if member.issparse():
        raise Invalid(f"{member.name}: sparse files are not supported")
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    raise Invalid(f"{member.name}: unsupported tar entry type {member.type!r}")


def _check_parents(name: str, raw: str, seen: dict[str, _Seen]) -> None:
    """Refuse an entry placed inside a symlink or a file: extracting it would write elsewhere."""
    parts = name.split("/")
    for depth in range(1, len(parts)):
        parent = seen.get("/".join(parts[:depth]))
        if parent is not None and parent.kind != "dir":
            raise Invalid(f"{raw}: lies inside {parent.raw}, which is a {parent.kind}, not a directory")


def _check_symlink(name: str, seen: _Seen, links: dict[str, str]) -> None:
    """Resolve a symlink through every symlink in the archive; it must land inside app/.

    Resolving textually is not enough: ``app/a -> .`` and ``app/b -> a/..`` each look
    harmless, yet ``app/b`` is the slug's root, and a link through it leaves the slug.
    """
    pending = list(reversed(name.split("/")[:-1] + seen.linkname.split("/")))
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise Invalid(f"{seen.raw}: symlink to {seen.linkname} points outside app/")
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get("/".join(resolved))
        if target is not None:
            hops += 1
            if hops > MAX_SYMLINK_HOPS or target.startswith("/"):
                raise Invalid(f"{seen.raw}: symlink to {seen.linkname} loops or points outside app/")
            resolved.pop()
            pending.extend(reversed(target.split("/")))
    if not resolved or resolved[0] != "app":
        raise Invalid(f"{seen.raw}: symlink to {seen.linkname} points outside app/")

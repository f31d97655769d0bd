"""Sizes and encodings: limits hold before anything is inflated, and only gzipped tars get in."""

from __future__ import annotations

import dataclasses
import gzip
import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from podium.artifacts import SlugLimits, inspect_slug
from podium.errors import Invalid, TooLarge

MakeSlug = Callable[..., Path]
TarEntry = Callable[..., tarfile.TarInfo]


def test_too_many_entries(make_slug: MakeSlug, limits: SlugLimits) -> None:
    files = [(f"app/f{i:03}", "x") for i in range(limits.max_entries)]
    with pytest.raises(TooLarge, match=r"app/f099: more than 100 entries \(PODIUM_SLUG_MAX_ENTRIES\)"):
        inspect_slug(make_slug(*files), limits)


def test_too_many_unpacked_bytes(make_slug: MakeSlug, limits: SlugLimits) -> None:
    small = dataclasses.replace(limits, max_unpacked_bytes=10_000)
    path = make_slug(("app/a", b"a" * 6_000), ("app/b", b"b" * 6_000))
    with pytest.raises(TooLarge, match=r"app/b: the slug would unpack to more than 10000 bytes"):
        inspect_slug(path, small)


def test_too_many_compressed_bytes(make_slug: MakeSlug, limits: SlugLimits) -> None:
    path = make_slug(("app/noise", bytes(range(256)) * 40))
    small = dataclasses.replace(limits, max_bytes=path.stat().st_size - 1)
    with pytest.raises(TooLarge, match=r"slug: \d+ bytes compressed, over the limit .*PODIUM_SLUG_MAX_BYTES"):
        inspect_slug(path, small)


def test_a_gzip_bomb_is_refused_by_its_ratio(make_slug: MakeSlug, limits: SlugLimits) -> None:
    path = make_slug(("app/zeros", bytes(50 * 1024 * 1024)))  # 50 MiB of zeros, about 50 KiB gzipped
    assert path.stat().st_size < 100 * 1024
    with pytest.raises(TooLarge, match=r"app/zeros: the slug would unpack to \d+ bytes, over 100 times"):
        inspect_slug(path, limits)


def test_a_bomb_is_refused_from_its_header_before_its_data_is_inflated(
    tmp_path: Path, limits: SlugLimits
) -> None:
    # The header claims 10 GiB and no data follows: only a decision taken from the header
    # can report the ratio rather than a truncated archive.
    procfile = tarfile.TarInfo("app/Procfile")
    procfile.size = 9
    header = tarfile.TarInfo("app/huge")
    header.size = 10 * 1024**3
    stream = procfile.tobuf() + b"web: run\n".ljust(512, b"\0") + header.tobuf()
    path = tmp_path / "slug.tgz"
    path.write_bytes(gzip.compress(stream))
    roomy = dataclasses.replace(limits, max_unpacked_bytes=10**12)
    with pytest.raises(TooLarge, match="app/huge: the slug would unpack to 10737418249 bytes, over 100 times"):
        inspect_slug(path, roomy)
    with pytest.raises(TooLarge, match="app/huge: the slug would unpack to more than 100000000 bytes"):
        inspect_slug(path, limits)


def test_inflating_stops_at_the_budget_even_when_headers_say_little(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry
) -> None:
    # Extended headers are no file content, yet they are inflated all the same: forty of
    # 60 KB each (each under the header limit) come to 2.4 MB of tar data.
    padded = [tar_entry(f"app/padded-{i}", pax_headers={"comment": "z" * 60_000}) for i in range(40)]
    path = make_slug(*padded)
    assert path.stat().st_size < 50_000
    with pytest.raises(TooLarge, match=r"the archive inflates past \d+ bytes of tar data"):
        inspect_slug(path, limits)


def test_a_pax_header_of_long_digit_runs_is_refused_before_tarfile_parses_it(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry
) -> None:
    # Python's tarfile (before 3.11.10) searches PAX data with a regex quadratic in a run of
    # digits: 60 KB of them cost minutes of CPU.
    padded = tar_entry("app/padded", pax_headers={"comment": "0" * 60_000})
    with pytest.raises(Invalid, match="a PAX extended header with a run of more than 64 digits"):
        inspect_slug(make_slug(padded), limits)


def test_pax_headers_that_tarfile_needs_still_work(
    make_slug: MakeSlug, limits: SlugLimits, tar_entry: TarEntry
) -> None:
    long_name = "app/" + "/".join(["d" * 60] * 4) + "/é.txt"  # past ustar's 100 bytes, and not ASCII
    slug = inspect_slug(make_slug(tar_entry(long_name, pax_headers={"mtime": "1733456789.123456789"})), limits)
    assert slug.entries >= 1


def test_a_small_slug_of_repetitive_text_is_no_bomb(make_slug: MakeSlug, limits: SlugLimits) -> None:
    path = make_slug(("app/data.csv", "0,0,0\n" * 50_000))  # 300 KB that compresses 300-fold
    assert inspect_slug(path, limits).unpacked_size > 300_000


# Encodings: only gzip, and only a tar inside it.


@pytest.mark.parametrize("keep", [0.5, -4], ids=["half", "trailer-cut"])
def test_a_truncated_gzip_is_refused(make_slug: MakeSlug, limits: SlugLimits, keep: float) -> None:
    path = make_slug(("app/noise", bytes(range(256)) * 100))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)] if keep > 0 else data[: int(keep)])
    with pytest.raises(Invalid, match="the archive ends early"):
        inspect_slug(path, limits)


def test_corrupt_gzip_data_is_refused(make_slug: MakeSlug, limits: SlugLimits) -> None:
    path = make_slug(("app/noise", bytes(range(256)) * 100))
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the CRC of the inflated data
    path.write_bytes(bytes(data))
    with pytest.raises(Invalid, match="slug: corrupt gzip data"):
        inspect_slug(path, limits)


def test_a_plain_tar_is_refused(make_slug: MakeSlug, limits: SlugLimits) -> None:
    with pytest.raises(Invalid, match=r"slug: an uncompressed tar; it must be gzip-compressed \(.*tar czf"):
        inspect_slug(make_slug(compress=False), limits)


def test_a_zip_is_refused(tmp_path: Path, limits: SlugLimits) -> None:
    path = tmp_path / "slug.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app/Procfile", "web: run\n")
    with pytest.raises(Invalid, match="slug: a zip archive; a slug is a gzipped tar"):
        inspect_slug(path, limits)


@pytest.mark.parametrize(("content", "reason"), [(b"web: run\n", "not gzip data"), (b"", "empty file")])
def test_other_files_are_refused(tmp_path: Path, limits: SlugLimits, content: bytes, reason: str) -> None:
    path = tmp_path / "slug.tgz"
    path.write_bytes(content)
    with pytest.raises(Invalid, match=f"slug: {reason}"):
        inspect_slug(path, limits)


def test_gzipped_data_that_is_no_tar_is_refused(tmp_path: Path, limits: SlugLimits) -> None:
    path = tmp_path / "slug.tgz"
    path.write_bytes(gzip.compress(b"web: run\n" * 100))
    with pytest.raises(Invalid, match="slug: not a tar archive inside the gzip"):
        inspect_slug(path, limits)


def test_a_tar_cut_inside_an_entry_names_the_entry(tmp_path: Path, limits: SlugLimits) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in [("app/Procfile", b"web: run\n"), ("app/big", bytes(range(256)) * 40)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "slug.tgz"
    path.write_bytes(gzip.compress(buffer.getvalue()[:3000]))  # a whole gzip of half a tar
    with pytest.raises(Invalid, match="app/big: unexpected end of data"):
        inspect_slug(path, limits)

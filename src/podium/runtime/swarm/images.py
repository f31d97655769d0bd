"""A release becomes an image: the stack image + the slug's ``app/`` under /app + the
virtualenv of its ``requirements.txt``, tagged by the slug's digest and pushed to the
registry, so every node can pull it and a rollback (or a promotion of the same slug)
builds nothing.

The virtualenv is built by a ``RUN`` step placed before the app's files are copied: the
engine's build cache keys it on the content of ``requirements.txt``, so a new slug with
the same requirements reuses it (the image is labelled with that hash too).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from docker import DockerClient
from docker.errors import APIError, ImageNotFound

from podium.artifacts.slug import SlugLimits, unpack_slug
from podium.errors import Invalid
from podium.runtime.interface import ReleaseSpec

BUILD_OUTPUT_LINES = 20
APP_USER = "10001:10001"  # no user of the stack image: an app owns no file of its image
PATH = "/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageBuildFailed(Invalid):
    """The image could not be built from the slug (a failing ``pip install``…)."""


def image_ref(registry: str | None, service: str, digest: str) -> str:
    """``<registry>/podium-<service>:<first 16 hex of the slug digest>``."""
    repository = f"podium-{service}"
    if registry:
        repository = f"{registry}/{repository}"
    return f"{repository}:{digest.removeprefix('sha256:')[:16]}"


def requirements_hash(app_dir: Path) -> str | None:
    requirements = app_dir / "requirements.txt"
    return hashlib.sha256(requirements.read_bytes()).hexdigest() if requirements.is_file() else None


def dockerfile(stack_image: str, with_requirements: bool, with_sdk: bool) -> str:
    lines = [f"FROM {stack_image}"]
    if with_requirements:
        lines += [
            "COPY app/requirements.txt /tmp/requirements.txt",
            "RUN python3 -m venv /venv && /venv/bin/pip install --no-cache-dir --disable-pip-version-check "
            "-q -r /tmp/requirements.txt",
        ]
    if with_sdk:
        lines += ["COPY sdk /opt/podium-sdk", "ENV PYTHONPATH=/opt/podium-sdk"]
    lines += ["COPY app /app", f"ENV PATH={PATH} HOME=/tmp PYTHONUNBUFFERED=1", "WORKDIR /app"]
    return "\n".join(lines) + "\n"


def build_context(app_dir: Path, sdk_path: Path | None, text: str) -> bytes:
    """The build context as a tar: the Dockerfile, ``app/``, and the SDK when there is one."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        tar.add(app_dir, "app", filter=_readable)
        if sdk_path is not None:
            tar.add(sdk_path, "sdk", filter=_readable)
    return buffer.getvalue()


def _readable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Files owned by root and readable by all: the app runs as a user that owns nothing."""
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = (info.mode | 0o444 | (0o111 if info.isdir() or info.mode & 0o100 else 0)) & 0o755
    return info


class ImageBuilder:
    """Builds and pushes release images through the manager's engine."""

    def __init__(self, client: DockerClient, stack_image: str, registry: str | None, limits: SlugLimits) -> None:
        self.client = client
        self.stack_image = stack_image
        self.registry = registry
        self.limits = limits

    def exists(self, ref: str) -> bool:
        try:
            self.client.images.get(ref)
        except ImageNotFound:
            return False
        return True

    def build(self, spec: ReleaseSpec, labels: dict[str, str]) -> tuple[str, bool]:
        """The image of the release's slug; ``(ref, built_now)``. Unpacks the slug with the
        same checks as the local runtime (a bad slug raises ``Invalid``), builds, pushes."""
        ref = image_ref(self.registry, spec.service, spec.digest)
        if self.exists(ref):
            self.push(ref)  # cheap when the registry has it: every layer is already there
            return ref, False
        with tempfile.TemporaryDirectory(prefix="podium-image-") as scratch:
            slug_dir = Path(scratch) / "slug"
            unpack_slug(spec.artifact_path, slug_dir, self.limits)
            app_dir = slug_dir / "app"
            reqs = requirements_hash(app_dir)
            sdk = spec.sdk_path if spec.sdk_path is not None and spec.sdk_path.is_dir() else None
            context = build_context(app_dir, sdk, dockerfile(self.stack_image, reqs is not None, sdk is not None))
        all_labels = {**labels, "podium.digest": spec.digest, **({"podium.requirements": reqs} if reqs else {})}
        self._run_build(ref, context, all_labels)
        self.push(ref)
        return ref, True

    def _run_build(self, ref: str, context: bytes, labels: dict[str, str]) -> None:
        output: list[str] = []
        try:
            for chunk in self.client.api.build(
                fileobj=io.BytesIO(context), custom_context=True, tag=ref, rm=True, forcerm=True, pull=False,
                decode=True, labels=labels, network_mode="host",
            ):
                output.extend(_lines(chunk))
                if "error" in chunk:
                    tail = "\n".join(output[-BUILD_OUTPUT_LINES:])
                    raise ImageBuildFailed(f"image build failed: {chunk['error'].strip()}\n{tail}".strip())
        except APIError as exc:
            raise ImageBuildFailed(f"image build failed: {exc.explanation}") from exc

    def push(self, ref: str) -> None:
        if not self.registry:
            return  # a one-node swarm runs what its own engine has
        repository, _, tag = ref.rpartition(":")
        for chunk in self.client.images.push(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise ImageBuildFailed(f"push of {ref} to {self.registry} failed: {chunk['error']}")

    def remove_except(self, service: str, keep_refs: set[str]) -> list[str]:
        """Remove the service's images on the manager that no kept release uses."""
        removed = []
        repository = image_ref(self.registry, service, "")[:-1]
        for image in self.client.images.list(name=repository):
            tags = [tag for tag in image.tags if tag.startswith(repository)]
            if tags and not set(tags) & keep_refs:
                for tag in tags:
                    try:
                        self.client.images.remove(tag)
                        removed.append(tag)
                    except APIError:  # still used by a container: it goes with the next prune
                        continue
        return removed


def _lines(chunk: dict[str, Any]) -> Iterator[str]:
    text = chunk.get("stream") or ""
    yield from (line for line in text.splitlines() if line.strip())

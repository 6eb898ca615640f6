"""Rule packs: list and read (every role), validate and activate (administrators).

The workers read packs from the packs directory and re-read it when a file changes, keeping the
packs in force when a reload fails (``rules.load_packs`` is all-or-nothing). Activation here
therefore (1) validates the uploaded YAML together with every other pack exactly as the workers
will load them (a combination rule may refer to the common pack, ids must be unique across
packs), (2) requires a higher ``version`` than the pack in force, so every change is a new,
named version, (3) writes the file atomically (a temporary file renamed over the old one — a
worker never reads half a file), and (4) records the exact YAML, its hash, who and when in
``rule_pack_activations`` and the audit log. Validation alone changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from homecare.api import audit
from homecare.api.accounts import Principal
from homecare.api.auth import Admin, Config, require_role
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES, ApiError, BadRequest, NotFound
from homecare.api.pagination import Page, PageParams, page
from homecare.rules import PackError, load_packs
from homecare.rules.packs import Pack

router = APIRouter(prefix="/packs", tags=["packs"], responses=ERROR_RESPONSES)

Anyone = Annotated[Principal, Depends(require_role("nurse", "physician", "analyst", "admin"))]
PackName = Annotated[str, PathParam(pattern=r"^[a-z_]{1,64}$")]
MAX_PACK_BYTES = 256 * 1024


class PacksNotWritable(ApiError):
    """PacksNotWritable: the packs directory cannot be written (nothing was activated)."""

    status = 503
    code = "packs_not_writable"


class PackSummary(BaseModel):
    """PackSummary: a pack in force — name, version, its rules' ids, the file's SHA-256."""

    pack: str
    version: int
    rules: list[str]
    sha256: str


class PackDetail(PackSummary):
    """PackDetail: a pack in force, with its rules as loaded."""

    definition: dict[str, Any]


class PackUpload(BaseModel):
    """PackUpload: a pack file's YAML text."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=MAX_PACK_BYTES)


class ValidationOut(BaseModel):
    """ValidationOut: whether the pack would load beside the others, and if not why."""

    valid: bool
    pack: str | None
    version: int | None
    errors: list[str]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _summary(pack: Pack, directory: Path) -> PackSummary:
    return PackSummary(
        pack=pack.pack,
        version=pack.version,
        rules=[rule.id for rule in pack.rules],
        sha256=_sha256(directory / f"{pack.pack}.yaml"),
    )


def _loaded(directory: Path) -> dict[str, Pack]:
    try:
        return dict(load_packs(directory).packs)
    except PackError as exc:  # the directory itself is broken: the workers keep the last good
        raise BadRequest(f"the packs in force do not load: {exc}", code="invalid_pack") from None


def _trial(directory: Path, name: str | None, content: str) -> tuple[Pack | None, list[str]]:
    """_trial loads every pack with ``content`` as ``<its pack>.yaml``, in a scratch copy."""
    import yaml

    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        return None, [f"not valid YAML: {exc}"]
    declared = document.get("pack") if isinstance(document, dict) else None
    if not isinstance(declared, str) or not declared:
        return None, ["the file has no 'pack' name"]
    if name is not None and declared != name:
        return None, [f"the file holds pack {declared!r}, not {name!r}"]
    with tempfile.TemporaryDirectory(prefix="homecare-pack-") as scratch:
        for existing in directory.glob("*.yaml"):
            shutil.copyfile(existing, Path(scratch) / existing.name)
        (Path(scratch) / f"{declared}.yaml").write_text(content, encoding="utf-8")
        try:
            packs = load_packs(Path(scratch))
        except PackError as exc:
            return None, [str(exc)]
    return packs.packs[declared], []


@router.get("", summary="Rule packs in force")
def list_packs(
    principal: Anyone, config: Config, params: Annotated[PageParams, Depends()]
) -> Page[PackSummary]:
    packs = sorted(_loaded(config.packs_dir).values(), key=lambda p: p.pack)
    after = params.after("packs", (str,))
    if after:
        packs = [p for p in packs if p.pack > after[0]]
    kept, cursor = page(packs[: params.limit + 1], params.limit, "packs", lambda p: (p.pack,))
    return Page(data=[_summary(p, config.packs_dir) for p in kept], next_cursor=cursor)


@router.get("/{name}", summary="One rule pack in force")
def get_pack(name: PackName, principal: Anyone, config: Config) -> PackDetail:
    pack = _loaded(config.packs_dir).get(name)
    if pack is None:
        raise NotFound(f"no pack {name!r}")
    summary = _summary(pack, config.packs_dir)
    return PackDetail(**summary.model_dump(), definition=pack.model_dump(mode="json"))


@router.post("/validate", summary="Validate a pack file beside the packs in force")
def validate_pack(body: PackUpload, principal: Admin, config: Config) -> ValidationOut:
    pack, errors = _trial(config.packs_dir, None, body.content)
    current = _loaded(config.packs_dir).get(pack.pack) if pack else None
    if pack is not None and current is not None and pack.version <= current.version:
        errors = [f"version {pack.version} must be above the version in force ({current.version})"]
    return ValidationOut(
        valid=not errors,
        pack=pack.pack if pack else None,
        version=pack.version if pack else None,
        errors=errors,
    )


@router.put("/{name}", summary="Activate a new version of a pack (the workers reload it)")
def activate_pack(
    name: PackName, body: PackUpload, principal: Admin, conn: Conn, config: Config
) -> PackSummary:
    pack, errors = _trial(config.packs_dir, name, body.content)
    if pack is None:
        raise BadRequest("; ".join(errors), code="invalid_pack", details=errors)
    current = _loaded(config.packs_dir).get(name)
    if current is not None and pack.version <= current.version:
        raise BadRequest(
            f"version {pack.version} must be above the version in force ({current.version})",
            code="stale_version",
        )
    digest = hashlib.sha256(body.content.encode()).hexdigest()
    with conn.transaction():
        conn.execute(
            "INSERT INTO rule_pack_activations (pack, version, content, sha256, activated_by)"
            " VALUES (%s, %s, %s, %s, %s)",
            (name, pack.version, body.content, digest, principal.actor),
        )
        audit.record(
            conn,
            principal,
            "pack.activate",
            f"pack/{name}",
            {
                "version": pack.version,
                "previous": current.version if current else None,
                "sha256": digest,
            },
        )
        try:
            _write_atomically(config.packs_dir / f"{name}.yaml", body.content)
        except OSError as exc:
            raise PacksNotWritable(
                f"cannot write to the packs directory: {exc.strerror or exc}"
            ) from None
    return _summary(pack, config.packs_dir)


def _write_atomically(target: Path, content: str) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""Unfinished multipart uploads: their parts, and Complete, which turns chosen parts into an object.

Complete copies no data: each chosen part's data file is hard-linked into the object directory and
the object's JSON lists those names in order (``data_files``; ``data_file`` is then ``""``). Only
when linking fails (EPERM, EXDEV, EMLINK...) are the parts copied into one data file as a single
PUT would store it. Links made before the JSON commit are unreferenced data files, so a crash
there leaves no object and the upload intact.

A completed upload's ``upload.json`` is removed right after the object commits; a crash between
the two leaves the upload listed (abort cleans it). That is the only non-atomic step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.store import datafiles
from qsyncd.emulator.store.buckets import BucketRegistry
from qsyncd.emulator.store.datafiles import CHUNK, BodyWriter
from qsyncd.emulator.store.layout import Layout, key_hash
from qsyncd.emulator.store.listing import page_uploads
from qsyncd.emulator.store.objects import ObjectStore
from qsyncd.emulator.store.records import BucketState, ObjectMeta, PartMeta, UploadState

log = logging.getLogger("qsyncd.emulator")

MIN_PART_SIZE = 4 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000


def load_uploads(udir: Path, state: BucketState) -> None:
    """Read every upload under ``udir`` into ``state``; remove broken uploads, stray data and temp files."""
    if not udir.is_dir():
        return
    for sub in udir.iterdir():
        try:
            info = json.loads((sub / "upload.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            shutil.rmtree(sub, ignore_errors=True)
            continue
        info.pop("parts", None)
        upload = UploadState(**info)
        referenced: set[str] = set()
        names = os.listdir(sub)
        for name in names:
            if name.startswith("part-") and name.endswith(".json"):
                try:
                    part = PartMeta(**json.loads((sub / name).read_text(encoding="utf-8")))
                except (OSError, ValueError, TypeError):
                    continue
                upload.parts[part.part_number] = part
                referenced.add(part.data_file)
        for name in names:
            if name.startswith(".tmp-") or (name.endswith(".data") and name not in referenced):
                (sub / name).unlink(missing_ok=True)
        state.uploads[upload.upload_id] = upload


def choose_parts(upload: UploadState, listed: list[dict[str, Any]]) -> list[PartMeta]:
    """The parts Complete makes the object of, in order (rules: see :mod:`qsyncd.emulator.operations`).

    ``listed`` entries hold ``part_number`` (int) and optional ``etag`` / ``size`` that must match
    the stored part; raises 400 ``invalid_request`` or ``entity_too_small``."""
    chosen: list[PartMeta] = []
    previous = -1
    for entry in listed:
        number = entry["part_number"]
        if number <= previous:
            raise EmulatorError(400, "invalid_request", "object_parts must be in ascending part_number order")
        previous = number
        part = upload.parts.get(number)
        if part is None:
            raise EmulatorError(400, "invalid_request", f"part {number} was never uploaded")
        given_etag = entry.get("etag")
        if given_etag and given_etag.strip('"').lower() != part.etag:
            raise EmulatorError(400, "invalid_request", f"etag of part {number} does not match")
        given_size = entry.get("size")
        if given_size is not None and int(given_size) != part.size:
            raise EmulatorError(400, "invalid_request", f"size of part {number} does not match")
        chosen.append(part)
    if not chosen:
        raise EmulatorError(400, "invalid_request", "object_parts is empty")
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise EmulatorError(
                400, "entity_too_small", f"part {part.part_number} is smaller than 4 MiB and not the last"
            )
    return chosen


def completed_meta(
    attrs: UploadState, size: int, etag: str, now: float, data_files: list[str] | None = None
) -> ObjectMeta:
    """The object a completed upload becomes: the upload's attributes, created ``now``; one data file
    (named at commit) or, with ``data_files``, the linked parts in order."""
    return ObjectMeta(
        key=attrs.key,
        size=size,
        etag=etag,
        mime_type=attrs.mime_type,
        created=now,
        modified=now,
        storage_class=attrs.storage_class,
        metadata=dict(attrs.metadata),
        headers=dict(attrs.headers),
        data_files=list(data_files or []),
    )


class UploadStore:
    """Multipart uploads by bucket and upload id; thread-safe under the store's lock."""

    def __init__(self, objects: ObjectStore, *, fsync: bool) -> None:
        self.objects = objects
        self.buckets: BucketRegistry = objects.buckets
        self.layout: Layout = objects.layout
        self.lock: threading.RLock = objects.lock
        self.now = objects.buckets.now
        self.fsync = fsync

    def initiate(self, bucket: str, upload: UploadState) -> UploadState:
        """Persist a new upload."""
        with self.lock:
            state = self.buckets.get(bucket)
            udir = self.layout.upload_dir(bucket, upload.upload_id)
            udir.mkdir(parents=True, exist_ok=False)
            data = dataclasses.asdict(upload)
            data.pop("parts")
            datafiles.write_json(udir / "upload.json", data, fsync=self.fsync)
            state.uploads[upload.upload_id] = upload
            return upload

    def get(self, bucket: str, upload_id: str, key: str | None = None) -> UploadState:
        """The upload; 404 ``upload_not_exists`` if unknown (or for another key)."""
        with self.lock:
            upload = self.buckets.get(bucket).uploads.get(upload_id)
            if upload is None or (key is not None and upload.key != key):
                raise EmulatorError(404, "upload_not_exists", "the multipart upload does not exist")
            return upload

    def part_writer(self, bucket: str, upload_id: str, key: str) -> BodyWriter:
        """A writer for a part of an existing upload."""
        self.get(bucket, upload_id, key)
        return BodyWriter(self.layout.upload_dir(bucket, upload_id), self.fsync)

    def commit_part(self, bucket: str, upload_id: str, key: str, writer_path: Path, part: PartMeta) -> PartMeta:
        """Store a part (replacing one with the same number)."""
        self.get(bucket, upload_id, key)
        udir = self.layout.upload_dir(bucket, upload_id)
        part.data_file = f"part-{part.part_number}.{uuid.uuid4().hex}.data"
        try:
            staged = datafiles.stage_json(udir, dataclasses.asdict(part), fsync=self.fsync)
        except FileNotFoundError:  # aborted meanwhile: its directory is gone
            self.get(bucket, upload_id, key)
            raise
        try:
            with self.lock:
                upload = self.get(bucket, upload_id, key)
                if part.part_number not in upload.parts and len(upload.parts) >= MAX_PARTS:
                    raise EmulatorError(400, "max_parts_exceeded", f"an upload holds at most {MAX_PARTS} parts")
                os.replace(writer_path, udir / part.data_file)
                os.replace(staged, udir / f"part-{part.part_number}.json")
                old = upload.parts.get(part.part_number)
                upload.parts[part.part_number] = part
                if old is not None:
                    (udir / old.data_file).unlink(missing_ok=True)
                result = dataclasses.replace(part)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        if self.fsync:
            datafiles.fsync_dir(udir)
        return result

    def parts(self, bucket: str, upload_id: str, key: str) -> list[PartMeta]:
        """All parts of an upload sorted by number."""
        with self.lock:
            upload = self.get(bucket, upload_id, key)
            return [dataclasses.replace(upload.parts[n]) for n in sorted(upload.parts)]

    def complete(
        self,
        bucket: str,
        upload_id: str,
        key: str,
        listed: list[dict[str, Any]],
        etag: str | None,
    ) -> ObjectMeta:
        """Make the listed parts the object (rules: see :func:`choose_parts`).

        The parts' data files are hard-linked into the object directory (no data is copied); the
        MD5 is computed by reading them only when no ``etag`` is given. The parts are copied into
        one file only if linking fails."""
        with self.lock:
            upload = self.get(bucket, upload_id, key)
            chosen = choose_parts(upload, listed)
            udir = self.layout.upload_dir(bucket, upload_id)
            attrs = dataclasses.replace(upload, parts={})
            linked = self._link_parts(bucket, upload_id, key, chosen)
            if linked is not None:
                files: list[BinaryIO] = []
            else:
                files = [open(udir / p.data_file, "rb") for p in chosen]  # noqa: SIM115
        if linked is not None:
            return self._complete_linked(bucket, upload_id, attrs, chosen, linked, etag)
        writer = self.objects.writer(bucket, key)
        try:
            for fh in files:
                with fh:
                    writer.append_file(fh, hash_it=not etag)
            md5 = writer.finish()
            meta = completed_meta(attrs, writer.size, etag if etag else md5, self.now())
            with self.lock:
                self.get(bucket, upload_id, key)  # still there (not aborted meanwhile)?
                result = self.objects.commit(bucket, writer.path, meta)
                self._drop(bucket, upload_id)
            return result
        except BaseException:
            for fh in files:
                fh.close()
            writer.discard()
            raise

    def _link_parts(self, bucket: str, upload_id: str, key: str, chosen: list[PartMeta]) -> list[str] | None:
        """Hard-link the chosen parts into the object directory; their names, or None if linking failed.

        The caller holds the lock (so no part file can be replaced or aborted meanwhile)."""
        udir = self.layout.upload_dir(bucket, upload_id)
        odir = self.layout.object_dir(bucket, key)
        odir.mkdir(parents=True, exist_ok=True)
        stem = f"{key_hash(key)}.{uuid.uuid4().hex}"
        names: list[str] = []
        try:
            for i, part in enumerate(chosen):
                name = f"{stem}.{i}.data"
                os.link(udir / part.data_file, odir / name)
                names.append(name)
        except OSError as exc:
            for name in names:
                (odir / name).unlink(missing_ok=True)
            log.warning("complete_copying_parts bucket=%s upload_id=%s reason=%r", bucket, upload_id, exc.strerror)
            return None
        return names

    def _complete_linked(
        self,
        bucket: str,
        upload_id: str,
        attrs: UploadState,
        chosen: list[PartMeta],
        names: list[str],
        etag: str | None,
    ) -> ObjectMeta:
        """Commit an object made of the hard-linked part files ``names`` (removed again on failure)."""
        odir = self.layout.object_dir(bucket, attrs.key)
        committed = False
        try:
            if etag:
                object_etag = etag
            else:
                md5 = hashlib.md5()
                buf = bytearray(CHUNK)
                view = memoryview(buf)
                for name in names:
                    with open(odir / name, "rb", buffering=0) as fh:
                        while n := fh.readinto(buf):
                            md5.update(view[:n])
                object_etag = md5.hexdigest()
            meta = completed_meta(attrs, sum(p.size for p in chosen), object_etag, self.now(), names)
            with self.lock:
                self.get(bucket, upload_id, attrs.key)  # still there (not aborted meanwhile)?
                result = self.objects.commit_meta(bucket, meta)
                committed = True
                self._drop(bucket, upload_id)
            return result
        except BaseException:
            # Keep the links if the JSON naming them got in before the failure (e.g. its dir fsync failed).
            if not committed and not self._json_names(bucket, attrs.key, names[0]):
                for name in names:
                    (odir / name).unlink(missing_ok=True)
            raise

    def _json_names(self, bucket: str, key: str, name: str) -> bool:
        """Whether the object JSON on disk lists data file ``name``."""
        try:
            data = json.loads(self.layout.object_json(bucket, key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and name in (data.get("data_files") or [])

    def _drop(self, bucket: str, upload_id: str) -> None:
        state = self.buckets.get(bucket)
        if state.uploads.pop(upload_id, None) is None:
            return
        udir = self.layout.upload_dir(bucket, upload_id)
        (udir / "upload.json").unlink(missing_ok=True)
        if self.fsync:
            datafiles.fsync_dir(udir)
        shutil.rmtree(udir, ignore_errors=True)

    def abort(self, bucket: str, upload_id: str) -> None:
        """Discard an upload; a no-op if it is unknown."""
        with self.lock:
            self.buckets.get(bucket)
            self._drop(bucket, upload_id)

    def page(
        self, bucket: str, prefix: str, delimiter: str, key_marker: str, upload_id_marker: str, limit: int
    ) -> tuple[list[UploadState], list[str], bool]:
        """(uploads, common prefixes, has_more), sorted by (key, upload_id), after the markers."""
        with self.lock:
            state = self.buckets.get(bucket)
            ordered = sorted(state.uploads.values(), key=lambda u: (u.key, u.upload_id))
        uploads, prefixes, has_more = page_uploads(ordered, prefix, delimiter, key_marker, upload_id_marker, limit)
        return [dataclasses.replace(u, parts={}) for u in uploads], prefixes, has_more

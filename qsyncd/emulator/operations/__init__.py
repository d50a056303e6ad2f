"""The QingStor operations the emulator implements, as plain functions of a request.

Each operation takes a :class:`~qsyncd.emulator.exchange.Request` and a
:class:`~qsyncd.emulator.exchange.Context` and returns a :class:`~qsyncd.emulator.exchange.Response`
(or raises :class:`~qsyncd.emulator.errors.EmulatorError`); none of them touches a socket.
:mod:`~qsyncd.emulator.operations.dispatch` names the operation of a request and runs it; the
operations are grouped in :mod:`~qsyncd.emulator.operations.buckets` (service and bucket),
:mod:`~qsyncd.emulator.operations.objects` and :mod:`~qsyncd.emulator.operations.multipart`;
:mod:`~qsyncd.emulator.operations.inputs` reads what a request carries (headers, bodies).

Choices where the reference says "NOT confirmed" (documented guesses):

- CompleteMultipart listing a part that was never uploaded, part numbers not strictly ascending,
  an empty list, or a part whose given ``etag``/``size`` differs from the stored part:
  **400 ``invalid_request``**.
- ``entity_too_small`` is enforced **at Complete**, for every listed part except the last.
- Complete without an ``ETag`` header: the object's ETag is the **MD5 of the concatenated
  bytes**. With the header, its value is stored with surrounding quotes stripped, unverified.
  Complete answers 201 **without** an ETag header.
- UploadMultipart answers with a quoted ``ETag`` header; ListMultipart ``etag`` values are
  **unquoted** (as in the docs example). ListObjects ``etag`` values are quoted.
- ``upload_not_exists`` is **404**; part numbers **0..10000** are accepted, at most 10000 distinct
  parts per upload (more: 400 ``max_parts_exceeded``).
- ListObjects: ``limit`` default 100, clamped to 1000 (non-positive: default); keys and common
  prefixes both count towards it; ``next_marker`` is the last key or prefix returned (``""`` if
  none), also when ``has_more`` is false; order is by code point (= UTF-8 byte order).
- ListMultipart: ``part_number_marker`` is exclusive (parts numbered above it), ``limit`` default
  and maximum 1000, ``count`` is the number of parts in the upload (not just this page).
- ListMultipartUploads: default 200, max 1000; sorted by (key, upload_id); upload ids sort by
  creation time.
- Keys: 1..1023 bytes of strictly valid UTF-8 (percent-decoded); any character is allowed.
  A path ``/<bucket>/`` (empty key) is a bucket-level request.
- Metadata: ``x-qs-meta-<name>`` names ``[A-Za-z0-9-_.]`` and values printable ASCII, else
  400 ``invalid_argument``; name > 512 bytes or total (names + values) > 2048 bytes:
  400 ``metadata_too_large``. Names are stored lower-case.
- DeleteMultipleObjects: missing ``Content-MD5`` -> 400 ``invalid_request``; at most 1000 keys.
- DeleteBucket with objects -> 409 ``bucket_not_empty``; unfinished uploads are deleted with it.
- Operations on a bucket with an invalid name answer 404 ``bucket_not_exists`` (only PutBucket
  says ``invalid_bucket_name``).
- Copy (``x-qs-copy-source``) and move (``x-qs-move-source``) are supported (201, no body).

Copy, move and versioning. What the service documents (yunify/qingcloud-docs
``content/storage/object-storage/api/``: ``object/basic_opt/copy.md``, ``move.md``,
``object/multipart/copy.md``, ``bucket/version/{_index,put_version,get_version,list_object_version}.md``)
and the Go SDK v4 signer (``request/signer/qingstor.go``: ``versioning``, ``version_id`` and
``versions`` are signed sub-resources; the emulator signs them too). qingstor-sdk 2.6.0 (Python) has
copy/move (``put_object(x_qs_copy_source=, x_qs_move_source=)``) and part copy
(``upload_multipart(x_qs_copy_source=, x_qs_copy_range=)``) but **no versioning call**; neither Go
SDK has one either (v4 only signs the names).

- Copy and move answer 201 with the new object's quoted ``ETag`` (the docs' response examples).
  A copy is conditional on ``x-qs-copy-source-if-match`` / ``-if-none-match``, a move on
  ``x-qs-move-source-if-match`` / ``-if-none-match`` (412 ``precondition_failed``) [docs ``copy.md``,
  ``move.md``]; the ``-modified-since`` conditions are not implemented. A copy of a source over
  5 GiB is 400 ``entity_too_large`` (the docs: one copy is at most 5 GiB; the code is a guess);
  ``move.md`` names no limit.
- Move: same or another bucket, overwrites the target, 201; 404 if the source or target bucket is
  missing [docs ``move.md``]. In a versioned bucket the source gets a delete marker (a guess: copy
  plus plain delete). A move source naming a version: 400 ``invalid_argument`` (not documented).
- Part copy: ``PUT ?upload_id&part_number`` with ``x-qs-copy-source`` and optional
  ``x-qs-copy-range: bytes=a-b`` (the GET Range syntax), 201 [docs ``multipart/copy.md``]. Guesses:
  the answer carries the part's quoted ``ETag`` and ``x-qs-content-copy-range: bytes a-b/size``;
  an unsatisfiable range is 416 ``invalid_range``; over 5 GiB is 400 ``entity_too_large``.
- PUT ``/<b>?versioning`` with JSON ``{"status": "ENABLED" | "SUSPENDED"}`` -> **200**, no body;
  GET ``?versioning`` -> 200 ``{"status": "ENABLED" | "SUSPENDED" | "DISABLED"}`` [docs
  ``put_version.md``, ``get_version.md``]. Once enabled it can only be suspended [backup-semantics].
  Any other status: 400 ``invalid_argument`` (guess).
- ``x-qs-version-id`` answers PUT, copy and Complete [docs ``bucket/version/_index.md``: PUT], and
  HEAD/GET (the emulator sends it once the bucket's versioning is not DISABLED, never before).
  GET/HEAD/DELETE take ``?version_id=``; a copy source ``/<b>/<k>?version_id=<id>`` copies that
  version (how an old version is restored) [docs ``_index.md``]. DELETE with a version id removes
  that version for good [docs]; 204 also for an unknown id (guess, like DELETE).
- GET/HEAD of a removed version: "404 or 405" [docs ``_index.md``]. The emulator (following S3):
  404 ``object_not_exists`` for an unknown version id, 405 ``method_not_allowed`` with
  ``x-qs-delete-marker: true`` for a delete marker's id; a key whose newest version is a delete
  marker is 404 with ``x-qs-delete-marker: true`` and the marker's ``x-qs-version-id``.
- Plain DELETE in a versioned bucket: a delete marker becomes the newest version; answered 204 with
  ``x-qs-delete-marker: true`` and its version id (S3's behaviour; the QingStor docs only name the
  ``x-qs-delete-marker`` header, for GET). Markers are made also for keys that do not exist (S3).
- Suspended versioning (S3's rules, undocumented for QingStor): new versions and markers are the
  key's *null version* (``version_id`` ``"null"``, also in ``x-qs-version-id``), replacing an earlier
  null version for good; objects written before versioning was enabled are null versions.
- GET ``/<b>?versions`` [docs ``list_object_version.md``]: query ``prefix``, ``delimiter``,
  ``key_marker``, ``version_id_marker`` (the docs' table also spells ``version-id-marker``: both are
  accepted), ``limit`` (default 100; clamped to 1000, a guess). Answer **200** (the docs' table says
  204, its example 200 with a body) ``{name, owner, prefix, delimiter, key_marker,
  version_id_marker, limit, has_more, next_key_marker, next_version_id_marker, keys, common_prefixes}``;
  each key ``{key, version_id, is_latest, delete_marker, size, etag (unquoted, "" for a marker),
  mime_type, encrypted, storage_class, created, modified}``, where **``modified`` is RFC 3339**
  there (the docs' example), unlike ListObjects' integer. Order: by key, newest version first.
- Version ids: the service's look like Base64 of a decimal number (``NjkxMjM0MzM1MjAxNzAwODMz``);
  the emulator's are 16 hex digits that grow with time. Clients must treat them as opaque.
- ListObjects, ``?stats`` and HEAD without ``version_id`` see current versions only. DeleteBucket
  is 409 ``bucket_not_empty`` while any version or delete marker is left (guess, as S3).
"""

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
"""

"""Which operation a request is, and running it: :func:`classify` and :func:`run`."""

from __future__ import annotations

from collections.abc import Callable

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.exchange import Context, Request, Response
from qsyncd.emulator.operations import buckets, multipart, objects, versioning
from qsyncd.emulator.wire import valid_bucket_name, valid_key

Operation = Callable[[Request, Context], Response]

OPERATIONS: dict[str, Operation] = {
    "ListBuckets": buckets.list_buckets,
    "PutBucket": buckets.put_bucket,
    "HeadBucket": buckets.head_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "GetBucketStatistics": buckets.get_bucket_statistics,
    "ListObjects": buckets.list_objects,
    "DeleteMultipleObjects": buckets.delete_multiple_objects,
    "ListMultipartUploads": buckets.list_multipart_uploads,
    "PutBucketVersioning": versioning.put_bucket_versioning,
    "GetBucketVersioning": versioning.get_bucket_versioning,
    "ListObjectVersions": versioning.list_object_versions,
    "PutObject": objects.put_object,
    "HeadObject": objects.head_object,
    "GetObject": objects.get_object,
    "DeleteObject": objects.delete_object,
    "InitiateMultipartUpload": multipart.initiate_multipart_upload,
    "UploadMultipart": multipart.upload_multipart,
    "ListMultipart": multipart.list_multipart,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
}
NOT_IMPLEMENTED = {"AppendObject"}  # known to QingStor, not to the emulator: 501
NOT_SUPPORTED = {  # sub-resources the emulator does not serve: 405
    "acl",
    "cors",
    "cname",
    "image",
    "logging",
    "lifecycle",
    "mirror",
    "notification",
    "policy",
    "replication",
}


def classify(method: str, bucket: str, key: str, query: dict[str, str]) -> str:
    """The operation name of a request (``Unsupported`` for anything the emulator does not do)."""
    if not bucket:
        return "ListBuckets" if method == "GET" else "Unsupported"
    if NOT_SUPPORTED & set(query):
        return "Unsupported"
    if not key:
        if method == "PUT":
            return "PutBucketVersioning" if "versioning" in query else "PutBucket"
        if method == "HEAD":
            return "HeadBucket"
        if method == "DELETE":
            return "DeleteBucket"
        if method == "GET":
            if "stats" in query:
                return "GetBucketStatistics"
            if "uploads" in query:
                return "ListMultipartUploads"
            if "versioning" in query:
                return "GetBucketVersioning"
            if "versions" in query:
                return "ListObjectVersions"
            return "ListObjects"
        if method == "POST" and "delete" in query:
            return "DeleteMultipleObjects"
        return "Unsupported"
    if method == "PUT":
        if "upload_id" in query or "part_number" in query:
            return "UploadMultipart"
        return "PutObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "GET":
        return "ListMultipart" if "upload_id" in query else "GetObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "upload_id" in query else "DeleteObject"
    if method == "POST":
        if "uploads" in query:
            return "InitiateMultipartUpload"
        if "upload_id" in query:
            return "CompleteMultipartUpload"
        if "append" in query:
            return "AppendObject"
    return "Unsupported"


def run(req: Request, ctx: Context) -> Response:
    """Run the operation ``req.operation`` names (:func:`classify` it first, if not done yet).

    Every operation but ListBuckets and PutBucket needs the bucket to exist (an invalid name is
    a missing bucket); a key must be 1..1023 bytes of UTF-8."""
    if not req.operation:
        req.operation = classify(req.method, req.bucket, req.key, req.query)
    operation = OPERATIONS.get(req.operation)
    if operation is None:
        if req.operation in NOT_IMPLEMENTED:
            raise EmulatorError(501, "not_implemented", f"{req.operation} is not implemented by the emulator")
        raise EmulatorError(405, "method_not_allowed", "operation not supported by the emulator")
    if req.operation not in ("ListBuckets", "PutBucket"):
        if not valid_bucket_name(req.bucket):
            raise EmulatorError(404, "bucket_not_exists", "the bucket does not exist")
        ctx.store.buckets.get(req.bucket)
    if req.key and not valid_key(req.key):
        raise EmulatorError(400, "invalid_object_name", "object keys are 1..1023 bytes of UTF-8")
    return operation(req, ctx)

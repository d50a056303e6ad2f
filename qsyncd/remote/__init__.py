"""The object-store boundary: a small ``Remote`` interface (``base``) and its QingStor implementation.

``qingstor`` holds ``QingStorRemote``; its two transports are ``qingstor_sdk`` (the only module that
imports the QingStor SDK) and ``qingstor_fast`` (hand-signed, ``signature``); QingStor's error codes
are translated in ``translate``.
"""

from qsyncd.remote.base import Body, ObjectInfo, PartInfo, Remote, UploadInfo

__all__ = ["Body", "ObjectInfo", "PartInfo", "Remote", "UploadInfo"]

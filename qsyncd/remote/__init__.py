"""The object-store boundary: a small ``Remote`` interface and its QingStor implementation.

Nothing outside ``qsyncd.remote`` imports the QingStor SDK.
"""

from qsyncd.remote.base import ObjectInfo, PartInfo, Remote, UploadInfo

__all__ = ["ObjectInfo", "PartInfo", "Remote", "UploadInfo"]

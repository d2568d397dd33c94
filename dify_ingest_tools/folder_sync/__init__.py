"""``sync DIR``: scan the folder, plan against the knowledge base, run the plan, report.

The knowledge base is the manifest: owner, source and hash live in Dify's metadata.
"""

from dify_ingest_tools.folder_sync.plan import SyncItem, SyncRefused
from dify_ingest_tools.folder_sync.report import SyncReport
from dify_ingest_tools.folder_sync.sync import scan_folder, sync_folder

__all__ = ["SyncItem", "SyncRefused", "SyncReport", "scan_folder", "sync_folder"]

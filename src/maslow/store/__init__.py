"""The workspace: versioned dataset snapshots on disk (and, in later issues, the workspace database)."""

from maslow.store.workspace import Version, Workspace, init_workspace

__all__ = ["Version", "Workspace", "init_workspace"]

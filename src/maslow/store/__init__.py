"""The workspace: versioned dataset snapshots on disk (and, in later issues, the workspace database)."""

from maslow.store.workspace import Commit, Version, Workspace, init_workspace, inside_store

__all__ = ["Commit", "Version", "Workspace", "init_workspace", "inside_store"]

"""uvsweep: find and safely remove the stale lock files uv leaves in the temp dir."""

__version__ = "0.1.0"

"""Pure tensor operations behind the nodes (no node declarations here)."""

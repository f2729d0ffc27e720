"""The commands (`python -m core.train`, ...: thin modules in core/ run these) and their runners
(parallel: runs side by side; cluster: the same as Ray tasks)."""

"""What the explorer and scripts call: the model API (`core.load`), atlases, maps and the classroom lab,
with the explorer-facing limits and geometry."""

"""One module per tab: plain functions that compute a tab's output, and `build(ctx, pair)` for its UI."""

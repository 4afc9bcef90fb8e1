"""Performance harnesses (DESIGN.md §5): ratios measured in one run, not timed tests."""

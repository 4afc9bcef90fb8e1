"""Models, corpora, losses and training loops (DESIGN.md §2.1)."""

"""One module per CLI verb; each imports its library code inside the command body."""

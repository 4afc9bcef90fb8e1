"""The bundle manifest JSON Schema (a data package so the file ships in the wheel)."""

"""The monitor, the wait driver, document-scoped sources, progress; `policy`: pure decisions."""

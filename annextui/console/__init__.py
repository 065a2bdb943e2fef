"""The console's data layer: what the Textual screens show, read from a repository (no textual,
no rich). `backend.ConsoleBackend` is the interface the app and its screens hold."""

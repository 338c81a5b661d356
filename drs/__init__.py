"""The Dynamic Risk Assessment System behind the course's scripts: one module per concern."""

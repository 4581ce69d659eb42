"""Command-line interface: ``genrekit <command>``; one module per command."""

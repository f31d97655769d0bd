"""The command line: Typer + Rich, talks to the server over HTTP only."""

"""What the CLI commands do, one module per command, as plain functions the CLI and the demo call."""

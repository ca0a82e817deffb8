"""The command line: one module per subcommand; the library never imports it."""

"""The commands: thin wrappers that parse arguments and call the library."""

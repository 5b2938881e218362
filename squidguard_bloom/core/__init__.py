"""What the helper, the list compiler and the tools share: hosts, lists, the engine."""

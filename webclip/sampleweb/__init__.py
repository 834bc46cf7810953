"""An embedded, procedurally drawn sample web: the default input for the demo and the tests."""

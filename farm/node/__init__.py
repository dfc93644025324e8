"""The node the farm runs on: its processes, its locks, its workers' phases and CPU sets, the sandbox, and the
doctor's checks of it."""

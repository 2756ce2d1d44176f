"""Process plumbing: the process group, the rank watchdog, stop requests."""

"""The search: one loop over pluggable backends, the controller, resume, live progress."""

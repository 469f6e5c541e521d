"""One trial in pure torch: the training loop, the trial runner, the plain trial record."""

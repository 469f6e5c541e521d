"""The only package importing MLflow: store, runs, writer thread, read-back, models."""

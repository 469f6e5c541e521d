"""Where trials run: Ray Tune (the only package importing Ray) and the tabular table."""

"""Configuration: the experiment schema and the table of metrics."""

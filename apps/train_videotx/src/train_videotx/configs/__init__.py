"""Experiment configs of `train-videotx`: one `get_config(arg=None)` per file, shared defaults in `common`."""

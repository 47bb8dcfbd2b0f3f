"""Experiment configs: `get_config(arg=None)` in each file returns an ml_collections ConfigDict."""

import os

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))

__all__ = ["CONFIG_DIR"]

"""Defaults and helpers shared by the sub-commands."""

import os

DEFAULT_OUTPUT = os.path.join("saved_models", "facenet_tf")

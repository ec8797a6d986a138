# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The offline testbed world: tiny tokenizer and Llama, retain and update tasks, base model and scorer."""

from .scoring import Scores, format_table, score_model
from .world import DEFAULT_ROOT, WorldConfig, WorldPaths, build_world


__all__ = ["DEFAULT_ROOT", "Scores", "WorldConfig", "WorldPaths", "build_world", "format_table", "score_model"]

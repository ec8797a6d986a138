# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Recipe tools behind `python -m open_r1.recipes`: `reading` (a recipe as its entry point reads it), `check` (every
problem of a recipe before a job is submitted), `memory` (per-GPU memory by phase, and the verdict), `migrate` (fork
and Open R1 recipes to this project's keys) and `smoke` (a recipe run for real on CPU stand-ins); `cli` parses the
commands."""

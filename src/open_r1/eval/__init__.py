# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Evaluation: task definitions (`tasks`), refusal judges (`judges`), their lighteval custom tasks and launcher
(`lighteval_tasks`), the `make evaluate` runner and results summary (`run`) and the learning-vs-forgetting plot
(`plots`). The testbed scorer uses the same task definitions directly."""

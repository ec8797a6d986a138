# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""`python -m open_r1.recipes check | migrate | smoke | memory`."""

import sys

from .cli import main


sys.exit(main())

# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Running untrusted code: the local sandbox (`sandbox`, `launcher`), test-case execution (`execution`), where programs
run (`providers`: local, E2B, Morph, Piston), Open R1's code rewards (`rewards`) and LiveCodeBench (`livecodebench`)."""

# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
import importlib


def import_callable(path: str, key: str):
    """The callable at `"package.module:function"`; errors name the config `key` that asked for it."""
    module_name, _, attribute = path.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"`{key}`: cannot import {path!r} ({error}).") from error
    if not callable(function):
        raise ValueError(f"`{key}`: {path!r} is not callable.")
    return function

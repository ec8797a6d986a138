# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Reading a recipe's YAML strictly, for the entry points and `recipes check` alike.

PyYAML keeps the last of two equal keys silently, and expands aliases into values without bound: a 1 KB file of
nested aliases grows into billions of values as soon as anything walks it. A recipe is refused, naming the file and
the line, when a key appears twice in one mapping or its aliases expand to more than `MAX_EXPANDED_VALUES` values.
`RecipeParser` is TRL's parser over such a reading that also refuses any `${...}` left in a value (a recipe not
passed through `envsubst`, whose `output_dir` would be literally `c04-${VERSION}`).
"""

import re

import yaml
from trl import TrlParser


MAX_EXPANDED_VALUES = 100_000
PLACEHOLDER = re.compile(r"\$\{\w+\}")


class RecipeError(ValueError):
    pass


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise RecipeError(
                    f"{self.name}: line {key_node.start_mark.line + 1}: `{key}` appears twice in one mapping (first at "
                    f"line {seen[key] + 1}); YAML would keep the last value silently"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _expanded_size(node, sizes: dict) -> int:
    """How many values `node` stands for once every alias is expanded (each shared node counted once per use)."""
    if id(node) in sizes:
        return sizes[id(node)]
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, sizes) for item in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return size


def load_recipe_yaml(text: str, name: str):
    """The YAML document in `text` (from the file `name`), refused as the module says."""
    loader = _StrictLoader(text)
    loader.name = name
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_EXPANDED_VALUES:
            raise RecipeError(
                f"{name}: its YAML aliases expand to {size:,} values (at most {MAX_EXPANDED_VALUES:,} are read): a "
                "recipe is a few hundred"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise RecipeError(f"{name}: not valid YAML ({error})") from error
    finally:
        loader.dispose()


def unrendered_placeholders(value, key: str = "") -> list[str]:
    """'key: ${NAME}' for each string in `value` (nested lists and mappings too) that still holds a placeholder."""
    if isinstance(value, str):
        return [f"{key}: {match}" for match in PLACEHOLDER.findall(value)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unrendered_placeholders(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in unrendered_placeholders(v, f"{key}[{i}]")]
    return []


class RecipeParser(TrlParser):
    """TRL's parser (YAML `--config`, then command-line overrides), reading the YAML strictly and refusing any
    unrendered `${...}` in the parsed values, before anything is loaded."""

    def parse_args_and_config(self, args=None, **kwargs):
        import sys

        args = list(args) if args is not None else sys.argv[1:]
        if "--config" in args:
            path = args[args.index("--config") + 1]
            with open(path) as handle:
                config = load_recipe_yaml(handle.read(), path)
            if not isinstance(config, dict):
                raise RecipeError(f"{path}: a recipe must be a YAML mapping of keys to values")
        parsed = super().parse_args_and_config(args, **kwargs)
        found = [p for output in parsed if hasattr(output, "__dict__") for p in unrendered_placeholders(vars(output))]
        if found:
            raise RecipeError(
                f"Unrendered placeholders in the recipe ({', '.join(found)}): render it first, e.g. "
                "`VERSION=v00.01 envsubst < recipe.yaml > rendered.yaml`, or use the Slurm launcher, which renders it."
            )
        return parsed

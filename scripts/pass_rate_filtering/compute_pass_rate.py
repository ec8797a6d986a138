# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Open R1's path for pass-rate filtering: runs `open_r1.pass_rate_filtering` (see its docstring).

python scripts/pass_rate_filtering/compute_pass_rate.py --config recipes/dataset_filtering/config_demo.yaml
"""

from trl import ModelConfig

from open_r1.configs import GRPOConfig
from open_r1.pass_rate_filtering import PassRateScriptArguments, main
from open_r1.utils.recipe_yaml import RecipeParser


if __name__ == "__main__":
    main(*RecipeParser((PassRateScriptArguments, GRPOConfig, ModelConfig)).parse_args_and_config())

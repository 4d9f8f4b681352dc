"""Training stages: data, sft, reward, ppo, evaluate and the models, judges and hub access they share."""

import os
import sys

# Installed W&B costs every job that imports trl about 3 s (trl's DPO trainer imports it at import time) although
# only `tracking.backend: wandb` uses it. A job whose config tracks otherwise starts with RLHF_BENCH_WANDB=off
# (rules/common.smk, STAGE_ENV), which hides the package from trl, accelerate and transformers alike: their
# availability checks are importlib.util.find_spec, which answers None for a None entry in sys.modules.
if os.environ.get("RLHF_BENCH_WANDB") == "off":
    sys.modules.setdefault("wandb", None)

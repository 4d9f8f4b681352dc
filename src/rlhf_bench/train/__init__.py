"""Training stages: data, sft, reward, ppo, evaluate and the models, judges and hub access they share."""

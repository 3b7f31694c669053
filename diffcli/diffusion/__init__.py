"""The diffusion engine: schedules, samplers and guidance, in torch (and numpy), with no CLI or UI."""

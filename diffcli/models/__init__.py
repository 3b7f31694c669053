"""Networks, the model registry, and the backends that expose any model as a denoiser."""

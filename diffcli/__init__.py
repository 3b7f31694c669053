"""diffcli: learn, run and measure diffusion models from the command line."""

__version__ = "0.1.0"

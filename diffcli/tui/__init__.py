"""Terminal output for long runs: the half-block image renderer and the live / plain progress view."""

"""Images in and out: reading and validating inputs, grids and labelled figures, atomic writes, stdout."""

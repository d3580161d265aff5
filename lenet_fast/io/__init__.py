"""Files: the pickle-free archive format with atomic writes, and the model files built on it."""

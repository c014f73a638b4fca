"""The paper's experiments, built on the engine (the engine knows nothing of them)."""

"""Use cases (one service class per feature, one method per use case) and their ports."""

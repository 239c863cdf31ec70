"""Pure domain model: entities, value objects and the error tree. No I/O, no frameworks."""

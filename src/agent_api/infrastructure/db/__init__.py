"""SQLAlchemy (Core, async) persistence: schema, the Database handle and the repositories."""

"""Adapters, each named after its technology; each turns its library's errors into port errors."""

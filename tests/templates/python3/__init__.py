"""Tests of the python3 template: its chunk reader and its replica server."""

"""Tests of the support feature package (support/)."""

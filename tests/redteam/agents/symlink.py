"""Replaces the guard's data with a symbolic link out of the tree."""
import os

os.unlink("data.txt")
os.symlink("/etc/hostname", "data.txt")

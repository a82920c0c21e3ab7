"""Manipulator goal tasks: a Panda-class arm reaching, pushing and picking a box (Fetch-style control)."""

"""The recipes shipped with pg_robotics: one YAML per task and algorithm (`configs/<task>_<algo>.yaml`), installed
inside the package as `pg_robotics.configs` so `pgr train` finds them from any directory."""

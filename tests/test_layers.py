"""The layers of docs/architecture.md hold: what each folder may import, the CLI a leaf, the ROS package reached only
through an entry point; recipes and docs ship with the repository and name paths that exist; the package installs
as a wheel and trains from an unrelated directory."""

import ast
import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports(folder: str) -> list[tuple[str, int, str]]:
    """(file, line, imported module) of every import statement under `folder`, relative imports resolved."""
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        package = ".".join(path.relative_to(ROOT / folder).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), node.lineno, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:  # relative: resolve against the file's package inside the folder
                    base = package.split(".")[:len(package.split(".")) - node.level + 1] if package else []
                    module = ".".join([folder, *[b for b in base if b], *([module] if module else [])])
                found.append((str(path.relative_to(ROOT)), node.lineno, module))
    return found


def offenders(folder: str, pattern: str) -> list[str]:
    return [f"{f}:{line} imports {m}" for f, line, m in imports(folder) if re.match(pattern, m)]


def test_deploy_imports_neither_torch_nor_mujoco_nor_the_learning_side():
    assert offenders("deploy", r"(torch|mujoco|warp|pg_robotics\.(?!deploy))") == []
    code = "import sys, pg_robotics.deploy; print(sorted(m for m in ('torch', 'mujoco') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_envs_import_nothing_from_the_learning_side_or_ros():
    learning = r"pg_robotics\.(?!envs)|pg_robotics$|pg_robotics_ros|rclpy"
    assert offenders("envs", learning) == []


def test_nothing_imports_the_cli():
    for folder in ("pg_robotics", "envs", "deploy", "ros_ws"):
        found = [o for o in offenders(folder, r"pg_robotics\.cli") if not o.startswith("pg_robotics/cli.py")]
        assert found == [], found
    # and at run time: importing every module of the package leaves the CLI unloaded
    code = ("import importlib, pkgutil, sys, pg_robotics\n"
            "for m in pkgutil.walk_packages(pg_robotics.__path__, 'pg_robotics.'):\n"
            "    if m.name != 'pg_robotics.cli' and not m.name.startswith('pg_robotics.envs.backends.isaacgym'):\n"
            "        importlib.import_module(m.name)\n"
            "print('pg_robotics.cli' in sys.modules, 'pg_robotics_ros' in sys.modules, 'rclpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


def test_the_learning_side_does_not_import_the_ros_package():
    assert offenders("pg_robotics", r"(pg_robotics_ros|rclpy)") == []


def test_the_ros_package_reaches_pg_robotics_through_deploy_and_envs_only():
    assert offenders("ros_ws", r"pg_robotics\.(?!deploy|envs)") == []


def test_pgr_finds_the_ros_commands_through_their_entry_point():
    from importlib.metadata import entry_points

    (ep,) = [ep for ep in entry_points(group="pg_robotics.commands") if ep.name == "ros"]
    plugin = ep.load()
    assert plugin.__name__ == "pg_robotics_ros.commands" and callable(plugin.add_parsers) and callable(plugin.raw)
    out = subprocess.run([sys.executable, "-m", "pg_robotics.cli", "sim2sim", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "--rate-hz" in out.stdout


def test_an_algorithm_is_named_in_the_registry_alone():
    """Outside pg_robotics/algorithms/, no module of the learning side tests an algorithm's name."""
    from pg_robotics import algorithms

    names = "|".join(algorithms.names())
    pattern = re.compile(rf"""["']({names})["']""")
    found = []
    for path in (ROOT / "pg_robotics").rglob("*.py"):
        if "algorithms" in path.parts:
            continue
        found += [f"{path.relative_to(ROOT)}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1)
                  if pattern.search(line)]
    assert found == []


def test_readme_and_docs_link_only_inside_the_repository():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)", doc.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path = (doc.parent / target).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), f"{doc.name}: link to {target}"
    assert "../shared" not in (ROOT / "README.md").read_text()
    assert (ROOT / "docs" / "architecture.md").is_file()


def test_recipe_comments_name_paths_that_exist():
    for recipe in sorted((ROOT / "configs").glob("*.yaml")):
        comments = " ".join(line.split("#", 1)[1] for line in recipe.read_text().splitlines() if "#" in line)
        for path in re.findall(r"[\w./-]+/[\w.-]+\.(?:py|yaml|xml|md)\b", comments):
            assert (ROOT / path).exists(), f"{recipe.name}: comment names {path}, which does not exist"


def test_the_wheel_ships_its_recipes_and_trains_from_an_unrelated_directory(tmp_path):
    """`pip install .` (not editable) into a fresh venv; the heavy dependencies come from this venv's
    site-packages through a path file (not processed as a site dir, so this checkout's editable install is not
    seen). From an empty directory: `pgr list`, and `pgr train` finds the shipped recipe and robot model."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py, pgr = venv / "bin" / "python", venv / "bin" / "pgr"
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], capture_output=True,
                             text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    away = tmp_path / "elsewhere"
    away.mkdir()
    where = subprocess.run([str(py), "-c", "import pg_robotics, pg_robotics.recipe as r; "
                                           "print(pg_robotics.__file__); print(r.CONFIGS)"],
                           capture_output=True, text=True, cwd=away, check=True).stdout.split()
    assert all(p.startswith(site) for p in where), where  # the installed copy, not this checkout
    listing = subprocess.run([str(pgr), "list", "--json"], capture_output=True, text=True, cwd=away, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "quadruped-flat" in [t["name"] for t in json.loads(listing.stdout)["tasks"]]
    train = subprocess.run([str(pgr), "train", "quadruped-flat", "--max-iterations", "1", "--num-envs", "4",
                            "--run-dir", "run", "--no-progress", "--set", "algorithm.num_steps_per_env=4"],
                           capture_output=True, text=True, cwd=away, timeout=600)
    assert train.returncode == 0, train.stderr
    import yaml

    recipe = yaml.safe_load((away / "run" / "config.yaml").read_text())
    assert recipe["algorithm"]["num_epochs"] == 3  # from the shipped configs/quadruped_flat_ppo.yaml (default: 5)
    assert (away / "run" / "checkpoints" / "model_1.pt").is_file()

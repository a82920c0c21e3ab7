"""ament_python build of pg_robotics_ros for `colcon build` (a pip install of pg_robotics also ships the package)."""

from glob import glob

from setuptools import setup

PACKAGE = "pg_robotics_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    description="pg_robotics policy node and MuJoCo sim bridge node",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        f"policy_node = {PACKAGE}.policy_node:main",
        f"mujoco_sim_node = {PACKAGE}.sim_node:main",
        f"command_watchdog = {PACKAGE}.watchdog:main",
        f"keyboard_teleop = {PACKAGE}.teleop:main",
    ], "pg_robotics.commands": [f"ros = {PACKAGE}.commands"]},  # pgr sim2sim, pgr ros, pgr bench faults
)

"""Writes go1_alt.xml beside this file: our Go1's kinematics with another published set of figures
(python envs/robots/go1/make_go1_alt.py)."""
import mujoco, numpy as np
from pathlib import Path


def main() -> None:
    HERE = Path(__file__).resolve().parent
    src = HERE / "go1.xml"
    spec = mujoco.MjSpec.from_file(str(src))
    spec.modelname = "go1_alt"
    # unitree_ros go1_description URDF inertials (as also carried by mujoco_menagerie/unitree_go1): pos, quat, mass, diag
    INERTIAL = {
        "trunk": ((0.0223, 0.002, -0.0005), (-0.00342088, 0.705204, 0.000106698, 0.708996), 5.204, (0.0716565, 0.0630105, 0.0168101)),
        "FR_hip": ((-0.0049166, 0.00762615, -8.865e-05), (0.507341, 0.514169, 0.495027, 0.482891), 0.68, (0.000734064, 0.000468438, 0.000398719)),
        "FL_hip": ((-0.0049166, -0.00762615, -8.865e-05), (0.482891, 0.495027, 0.514169, 0.507341), 0.68, (0.000734064, 0.000468438, 0.000398719)),
        "RR_hip": ((0.0049166, 0.00762615, -8.865e-05), (0.495027, 0.482891, 0.507341, 0.514169), 0.68, (0.000734064, 0.000468438, 0.000398719)),
        "RL_hip": ((0.0049166, -0.00762615, -8.865e-05), (0.514169, 0.507341, 0.482891, 0.495027), 0.68, (0.000734064, 0.000468438, 0.000398719)),
    }
    for side, sy in (("R", 1), ("L", -1)):
        for end in ("F", "R"):
            INERTIAL[f"{end}{side}_thigh"] = ((-0.00304722, sy * 0.019315, -0.0305004),
                                              (0.65243, -0.0272313, 0.0775126, 0.753383) if side == "R" else (0.753383, 0.0775126, -0.0272313, 0.65243),
                                              1.009, (0.00478717, 0.00460903, 0.000709268))
            INERTIAL[f"{end}{side}_calf"] = ((0.00429862, 0.000976676, -0.146197), (0.691246, 0.00357467, 0.00511118, 0.722592),
                                             0.195862, (0.00149767, 0.00148468, 3.58427e-05))
    for name, (pos, quat, mass, diag) in INERTIAL.items():
        b = spec.body(name)
        b.explicitinertial = True
        b.ipos, b.iquat, b.mass, b.inertia = list(pos), list(quat), mass, list(diag)
    for g in spec.geoms:
        if g.name.endswith("_foot"):
            g.size = [0.023, 0, 0]  # foot sphere radius 23 mm
            g.mass = 0.0  # the calf's inertial above includes the foot
    for j in spec.joints:
        if j.name.endswith("_hip_joint"):
            j.damping, j.frictionloss = [1.0, 0.0, 0.0], 0.2
        elif j.name.endswith(("_thigh_joint", "_calf_joint")):
            j.damping, j.frictionloss = [2.0, 0.0, 0.0], 0.2
    xml = spec.to_xml()
    header = """<!--
      go1_alt: a second Go1-class model for evaluation only (pgr eval RUN --model go1_alt.xml); never trained on.
      Same kinematics, joint names and collision shapes as go1.xml (our model), other published figures:
        inertials: the centre-of-mass offsets, orientations and inertia tensors of Unitree's go1_description URDF
          (unitree_ros repository; also carried by mujoco_menagerie's unitree_go1), where go1.xml places each link's
          mass at its primitive's centre (e.g. thigh centre of mass 3 cm below the hip here, 11 cm in go1.xml; calf
          14.6 cm vs 10 cm; trunk 2.2 cm forward);
        calf 0.195862 kg including the foot (go1.xml: 0.196 kg + a 0.06 kg foot); foot sphere radius 0.023 m
          (mujoco_menagerie's unitree_go1; go1.xml: 0.020 m);
        joint damping 1 N m s/rad (abduction) and 2 N m s/rad (hip, knee) and friction loss 0.2 N m
          (mujoco_menagerie's unitree_go1; go1.xml: 0.05, none). Armature 0.01 kg m^2 as in both.
      Written by MjSpec from go1.xml with those figures set: envs/robots/go1/make_go1_alt.py.
    -->
    """
    out = HERE / "go1_alt.xml"
    out.write_text(header + xml)
    m = mujoco.MjModel.from_xml_path(str(out))
    print("total mass", m.body_subtreemass[1], "bodies", m.nbody)


if __name__ == "__main__":
    main()

"""Broken copies of an exported policy for fault injection (`pg_robotics_ros.faults`, tests/test_faults.py): the same
graph, contract and behaviour, until the velocity command's forward component reaches half its range's top. Then
a "nan" model outputs NaN actions, and a "raise" model makes onnxruntime fail at run time (a Gather index out of
range). Needs the `onnx` package (the train extra), not the robot-side install."""

from __future__ import annotations

from pathlib import Path

from pg_robotics.deploy.contract import decode, parse


def command_trigger(meta: dict) -> tuple[int, float]:
    """(index of the newest v_x in the observation, the value above which the fault fires: v_x at half its
    range's top, scaled)."""
    spec = parse(meta)
    offset = 0
    for term in spec.observation_terms:
        if term.name == "command":
            top = spec.command_ranges[0][1]
            return offset + (term.history - 1) * term.dim, 0.5 * top * term.scale[0]
        offset += term.dim * term.history
    raise ValueError("the policy has no command term to trigger a fault with")


def faulty_policy(src: str | Path, dst: str | Path, kind: str) -> Path:
    """Write the broken copy of policy `src` at `dst`; `kind` is "nan" or "raise"."""
    import onnx
    from onnx import TensorProto, helper

    if kind not in ("nan", "raise"):
        raise ValueError(f"kind: expected 'nan' or 'raise', got {kind!r}")
    proto = onnx.load(str(src))
    graph = proto.graph
    index, threshold = command_trigger(decode({p.key: p.value for p in proto.metadata_props}))
    out = graph.output[0].name
    for node in graph.node:  # the policy now writes "raw_actions"; the added nodes make the output from it
        node.output[:] = ["raw_actions" if name == out else name for name in node.output]
    const = lambda name, dtype, values, dims: graph.initializer.append(  # noqa: E731
        helper.make_tensor(name, dtype, dims, values))
    const("fault_index", TensorProto.INT64, [index], [1])
    const("fault_threshold", TensorProto.FLOAT, [threshold], [])
    add = graph.node.extend
    add([helper.make_node("Gather", [graph.input[0].name, "fault_index"], ["fault_value"], axis=1),
         helper.make_node("Sub", ["fault_value", "fault_threshold"], ["fault_excess"]),
         helper.make_node("Relu", ["fault_excess"], ["fault_on"])])  # [B, 1]: > 0 while the fault fires
    if kind == "nan":  # sqrt of a negative number
        add([helper.make_node("Neg", ["fault_on"], ["fault_neg"]),
             helper.make_node("Sqrt", ["fault_neg"], ["fault_nan"]),
             helper.make_node("Add", ["raw_actions", "fault_nan"], [out])])
    else:  # an index of 0 normally, far out of a one-element table while the fault fires
        const("fault_big", TensorProto.FLOAT, [1e6], [])
        const("fault_table", TensorProto.FLOAT, [0.0], [1])
        add([helper.make_node("Mul", ["fault_on", "fault_big"], ["fault_scaled"]),
             helper.make_node("Cast", ["fault_scaled"], ["fault_at"], to=TensorProto.INT64),
             helper.make_node("Gather", ["fault_table", "fault_at"], ["fault_zero"], axis=0),
             helper.make_node("Add", ["raw_actions", "fault_zero"], [out])])
    onnx.checker.check_model(proto)
    onnx.save(proto, str(dst))
    return Path(dst)

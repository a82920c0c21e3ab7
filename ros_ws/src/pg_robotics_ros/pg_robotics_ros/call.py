"""`pgr ros call ACTION`: a lifecycle transition or the e-stop of the policy node, for hosts without the ros2 CLI
(`ros2 lifecycle set /policy_node activate`, `ros2 service call /policy_node/estop std_srvs/srv/Trigger`)."""

from __future__ import annotations

import time

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from std_srvs.srv import Trigger

TRANSITIONS = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP,
               "shutdown": Transition.TRANSITION_ACTIVE_SHUTDOWN}


class CallError(RuntimeError):
    pass


def service_and_request(node_name: str, action: str):
    """(service type, service name, request) of an action."""
    if action == "estop":
        return Trigger, f"/{node_name}/estop", Trigger.Request()
    if action not in TRANSITIONS:
        raise CallError(f"action: expected estop or one of {', '.join(TRANSITIONS)}, got {action!r}")
    return ChangeState, f"/{node_name}/change_state", ChangeState.Request(transition=Transition(id=TRANSITIONS[action]))


def wait(executor, done, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise CallError(f"timed out after {timeout:g} s waiting for {what}")
        executor.spin_once(timeout_sec=0.05)


# A lifecycle transition's goal state and the states it starts from (labels of lifecycle_msgs/State).
GOAL = {"configure": "inactive", "activate": "active", "deactivate": "inactive", "cleanup": "unconfigured",
        "shutdown": "finalized"}
START = {"configure": {"unconfigured"}, "activate": {"inactive"}, "deactivate": {"active"},
         "cleanup": {"inactive"}, "shutdown": {"unconfigured", "inactive", "active"}}
FIRST_PATIENCE_S = 2.0  # how long to wait for a reply before asking whether it was lost (doubles each time)


def request(node, executor, kind, service: str, req, timeout: float, when_silent=lambda remaining: "resend"):
    """The reply to `req` from `service`, or None when `when_silent` found that the request took effect.

    A reply can be lost: a Fast DDS server sends it only once it has discovered the client's reply reader and waits
    100 ms for that, which a fresh client on a loaded machine can miss. So when no reply comes within
    FIRST_PATIENCE_S (doubling), `when_silent(seconds left)` decides: "resend" the request (the default, for
    requests that may be repeated), "wait" on, or "done" (it took effect). A reply to any copy counts."""
    end = time.monotonic() + timeout
    client = node.create_client(kind, service)
    try:
        wait(executor, client.service_is_ready, timeout, f"service {service}")
        futures, patience = [client.call_async(req)], FIRST_PATIENCE_S
        while True:
            remaining = end - time.monotonic()
            try:
                wait(executor, lambda: any(f.done() for f in futures), max(0.0, min(patience, remaining)),
                     f"the reply of {service}")
                return next(f for f in futures if f.done()).result()
            except CallError:
                if time.monotonic() >= end:
                    raise CallError(f"timed out after {timeout:g} s waiting for the reply of {service}") from None
            patience *= 2
            decision = when_silent(end - time.monotonic())
            if decision == "done":
                return None
            if decision == "resend":
                futures.append(client.call_async(req))
    finally:
        node.destroy_client(client)


def lifecycle_state(node, executor, node_name: str, timeout: float) -> str:
    """The label of `node_name`'s lifecycle state (e.g. "inactive", "configuring")."""
    return request(node, executor, GetState, f"/{node_name}/get_state", GetState.Request(),
                   timeout).current_state.label


def call_service(node, executor, node_name: str, action: str, timeout: float) -> str:
    """Call `action` on `node_name` from `node`; raises CallError unless it succeeds. When the reply is slow, a
    transition is sent again only while the node is still in a state it starts from, and counts as done once the
    node is in its goal state (the reply was lost); an e-stop is sent again (a second one changes nothing)."""
    kind, service, req = service_and_request(node_name, action)

    def when_silent(remaining: float) -> str:
        if action == "estop":
            return "resend"
        state = lifecycle_state(node, executor, node_name, max(1.0, remaining))
        return "done" if state == GOAL[action] else "resend" if state in START[action] else "wait"

    reply = request(node, executor, kind, service, req, timeout, when_silent)
    if reply is not None and not reply.success:
        raise CallError(f"{node_name}: {action} failed{': ' + reply.message if action == 'estop' else ''}"
                        " (see the node's log)")
    return f"{node_name}: {action} done"


def call(node_name: str, action: str, timeout: float = 10.0) -> str:
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("pgr_ros_call", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        return call_service(node, executor, node_name, action, timeout)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)

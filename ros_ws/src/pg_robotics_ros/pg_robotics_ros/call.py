"""`pgr ros call ACTION`: a lifecycle transition or the e-stop of the policy node, for hosts without the ros2 CLI
(`ros2 lifecycle set /policy_node activate`, `ros2 service call /policy_node/estop std_srvs/srv/Trigger`)."""

from __future__ import annotations

import time

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
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


def call_service(node, executor, node_name: str, action: str, timeout: float) -> str:
    """Call `action` on `node_name` from `node`; raises CallError unless it succeeds."""
    kind, service, request = service_and_request(node_name, action)
    client = node.create_client(kind, service)
    try:
        wait(executor, client.service_is_ready, timeout, f"service {service}")
        future = client.call_async(request)
        wait(executor, future.done, timeout, f"the reply of {service}")
        reply = future.result()
        if not reply.success:
            raise CallError(f"{node_name}: {action} failed{': ' + reply.message if action == 'estop' else ''}"
                            " (see the node's log)")
        return f"{node_name}: {action} done"
    finally:
        node.destroy_client(client)


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

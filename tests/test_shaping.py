"""Potential-based shaping F = gamma Phi(s') - Phi(s) leaves the optimal policy of an MDP unchanged."""

import torch

from pg_robotics.envs.shaping import potential_shaping


def optimal_policy(P, R, gamma, terminal, iters=2000):
    """Value iteration on a tabular MDP: P[s, a] -> s' (deterministic), R[s, a]. Returns (policy, Q)."""
    n_s = P.shape[0]
    V = torch.zeros(n_s, dtype=torch.float64)
    for _ in range(iters):
        Q = R + gamma * V[P] * (~terminal[P])
        V = Q.max(dim=1).values
    return Q.argmax(dim=1), Q


def test_shaping_keeps_the_optimal_policy_on_a_chain():
    # 6-state chain, actions left/right/stay; reaching state 5 pays 1 and ends; every step costs 0.01.
    n, gamma = 6, 0.9
    s = torch.arange(n)
    P = torch.stack([(s - 1).clamp(0, n - 1), (s + 1).clamp(0, n - 1), s], dim=1)
    terminal = s == n - 1
    R = torch.full((n, 3), -0.01, dtype=torch.float64)
    R[P == n - 1] = 1.0
    base_policy, base_Q = optimal_policy(P, R, gamma, terminal)
    # a misleading potential that pulls toward state 0
    for phi in (torch.tensor([5.0, 4, 3, 2, 1, 0], dtype=torch.float64), torch.randn(n, dtype=torch.float64)):
        F = potential_shaping(phi[:, None].expand(n, 3), phi[P], gamma, terminated=terminal[P])
        policy, Q = optimal_policy(P, R + F, gamma, terminal)
        live = ~terminal
        assert torch.equal(policy[live], base_policy[live])
        # Q' = Q - Phi(s), exactly (Ng et al. 1999)
        assert torch.allclose(Q[live], base_Q[live] - phi[live, None], atol=1e-9)


def test_shaping_terminal_potential_is_zero():
    f = potential_shaping(torch.tensor([1.0, 1.0]), torch.tensor([3.0, 3.0]), 0.5, torch.tensor([False, True]))
    assert f.tolist() == [0.5, -1.0]

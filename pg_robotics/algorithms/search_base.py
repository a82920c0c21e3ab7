"""What the searches in policy-parameter space share (CEM, ES; runner: pg_robotics/runners/population.py): a policy
MLP whose parameters are one flat vector, a population of such vectors evaluated together in one batched env
(world w runs candidate w // worlds_per_candidate, all candidates in one batched forward pass), a running
observation normalizer in front, inference with the search's current mean and checkpoints. A member writes
`population(gen)` (the candidates of this iteration, (C, P)) and `update(returns)` (one return per candidate)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from pg_robotics.distributed import SINGLE, World
from pg_robotics.envs import ConfigError
from pg_robotics.networks import ACTIVATIONS, EmpiricalNormalizer, FlatPolicyInference, mlp


@dataclass
class SearchCfg:
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    worlds_per_candidate: int = 1  # the worlds whose returns average into a candidate's
    horizon: int = 200  # steps of every evaluation episode (cut short by the world's own end)
    normalize_obs: bool = True
    init_std: float = 0.1  # the search distribution's initial spread (CEM) or the perturbation size (ES)

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: unknown {self.activation!r} (known: {', '.join(ACTIVATIONS)})")
        if self.worlds_per_candidate < 1 or self.horizon < 1 or not self.init_std > 0:
            raise ValueError(f"worlds_per_candidate >= 1, horizon >= 1, init_std > 0: got "
                             f"{self.worlds_per_candidate}, {self.horizon}, {self.init_std}")


def batched_mlp(params: torch.Tensor, x: torch.Tensor, shapes: list[tuple[int, int]], activation) -> torch.Tensor:
    """Row i of `x` through the MLP whose flat parameters are row i of `params` (layers (out, in) weight then
    bias, in `nn.Linear` order); one batched matrix product per layer."""
    i = 0
    for k, (out_dim, in_dim) in enumerate(shapes):
        w = params[:, i:i + out_dim * in_dim].view(-1, out_dim, in_dim)
        i += out_dim * in_dim
        b = params[:, i:i + out_dim]
        i += out_dim
        x = torch.bmm(w, x.unsqueeze(-1)).squeeze(-1) + b
        if k < len(shapes) - 1:
            x = activation(x)
    return x


class SearchLearner(FlatPolicyInference):
    @classmethod
    def from_env(cls, cfg: SearchCfg, env, world: World = SINGLE) -> "SearchLearner":
        if world.active:
            raise ConfigError("algo: the parameter-space searches run on one rank (give them more worlds instead)")
        if env.num_envs % cfg.worlds_per_candidate:
            raise ConfigError(f"runner.num_envs: {env.num_envs} is not a multiple of algorithm.worlds_per_candidate "
                              f"({cfg.worlds_per_candidate})")
        return cls(cfg, env.num_obs["policy"], env.num_actions, env.num_envs // cfg.worlds_per_candidate, env.device,
                   getattr(env, "discrete", False))

    def __init__(self, cfg: SearchCfg, num_obs: int, num_actions: int, population: int,
                 device: torch.device | str = "cpu", discrete: bool = False):
        self.cfg, self.device, self.discrete, self.size = cfg, torch.device(device), discrete, population
        self.net = mlp(num_obs, cfg.hidden, num_actions, cfg.activation).to(self.device)
        self.shapes = [(m.out_features, m.in_features) for m in self.net if isinstance(m, nn.Linear)]
        self.activation = ACTIVATIONS[cfg.activation]()
        self.mean = parameters_to_vector(self.net.parameters()).detach().clone()
        self.num_params = len(self.mean)
        self.obs_normalizer = (EmpiricalNormalizer(num_obs) if cfg.normalize_obs else nn.Identity()).to(self.device)
        self.candidates: torch.Tensor | None = None

    def population(self, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def update(self, returns: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def act_population(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Every world's action from its candidate's parameters (updates the normalizer)."""
        x = obs["policy"]
        if self.cfg.normalize_obs:
            self.obs_normalizer.update(x)
        params = self.candidates.repeat_interleave(self.cfg.worlds_per_candidate, dim=0)
        out = batched_mlp(params, self.obs_normalizer(x), self.shapes, self.activation)
        return out.argmax(-1, keepdim=True).float() if self.discrete else out

    def inference_module(self) -> nn.Module:
        from pg_robotics.algorithms.actor_critic import DeterministicPolicy

        vector_to_parameters(self.mean, self.net.parameters())
        return DeterministicPolicy(self.obs_normalizer, self.net, self.discrete).eval()

    def digest_module(self) -> nn.Module:
        vector_to_parameters(self.mean, self.net.parameters())
        return self.net

    def state_dict(self) -> dict:
        return {"mean": self.mean, "obs_normalizer": self.obs_normalizer.state_dict(), **self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        self.mean = state["mean"].to(self.device).clone()
        self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        self.load_extra_state(state)

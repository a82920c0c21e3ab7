"""Actor-critic MLPs (a Gaussian policy with a state-independent std, or a softmax policy over discrete actions),
and a running observation normalizer."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical, Normal

from pg_robotics.distributed import all_reduce

ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(inputs: int, hidden: list[int], outputs: int, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), ACTIVATIONS[activation]()]
        inputs = width
    layers.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*layers)


NORMALIZER_FORMS = ("sqrt_var_eps", "std_eps")


class EmpiricalNormalizer(nn.Module):
    """Running mean and variance of the inputs (parallel-variance update); normalizes to zero mean, unit
    variance. Its buffers travel with the checkpoint and into the exported ONNX graph. `distributed`:
    each update uses the moments of the batches of all ranks, so every rank keeps the same statistics.

    `form`: "sqrt_var_eps", (x - mean) / sqrt(var + eps) clipped at +-clip; or "std_eps", (x - mean) / (std + eps)
    unclipped (rsl_rl's): an input with a small spread (a std of 0.05 rad of body tilt) is scaled up about twice as
    much as by the first form, so the policy sees it with a gain near 1 / std."""

    def __init__(self, size: int, eps: float = 1e-2, clip: float = 10.0, distributed: bool = False,
                 form: str = "sqrt_var_eps"):
        super().__init__()
        if form not in NORMALIZER_FORMS:
            raise ValueError(f"normalizer form: expected one of {', '.join(NORMALIZER_FORMS)}, got {form!r}")
        self.eps, self.clip, self.distributed, self.form = eps, clip, distributed, form
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.form == "std_eps":
            return (x - self.mean) / (torch.sqrt(self.var) + self.eps)
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        n = x.shape[0]
        batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)
        if self.distributed:  # the moments of the batch of all ranks together
            d = x.shape[1]
            moments = torch.cat([x.new_full((1,), n, dtype=torch.float64),
                                 (batch_mean * n).double(), ((batch_var + batch_mean.square()) * n).double()])
            all_reduce(moments)
            mean = moments[1:1 + d] / moments[0]
            batch_mean = mean.to(x.dtype)
            batch_var = (moments[1 + d:] / moments[0] - mean.square()).clamp(min=0).to(x.dtype)
            n = moments[0].round().long()  # the count over all ranks stays a tensor: no host sync per update
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * (n / total)
        self.var.copy_((self.var * self.count + batch_var * n + delta.square() * self.count * n / total) / total)
        self.count.copy_(total)


class FlatPolicyInference:
    """For a learner whose `inference_module()` is its whole deterministic policy on the "policy" observations
    (the off-policy and parameter-space methods): what eval and export call, and the checkpoint hooks of a
    learner's own extra state."""

    @torch.no_grad()
    def act_inference(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.inference_module()(obs["policy"])

    @staticmethod
    def inference_input(obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return obs["policy"]

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass


STD_TYPES = ("log", "scalar")
MIN_STD = 1e-3


class ActorCritic(nn.Module):
    """`std_type`: the exploration noise's learned parameter, its log ("log") or the standard deviation itself
    ("scalar", clamped at MIN_STD; an optimizer step then moves it by about the learning rate in action units, so
    it shrinks faster once small than a log's relative steps). `discrete`: `num_actions` choices, the actor's
    outputs are their logits (a softmax policy); actions are then the chosen index, as a float in a column."""

    def __init__(self, num_actor_obs: int, num_critic_obs: int, num_actions: int, actor_hidden: list[int],
                 critic_hidden: list[int], activation: str = "elu", init_std: float = 1.0, std_type: str = "log",
                 discrete: bool = False, output_scale: float = 1.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: unknown {activation!r} (known: {', '.join(ACTIVATIONS)})")
        if std_type not in STD_TYPES:
            raise ValueError(f"std_type: expected one of {', '.join(STD_TYPES)}, got {std_type!r}")
        self.actor = mlp(num_actor_obs, actor_hidden, num_actions, activation)
        with torch.no_grad():
            for p in self.actor[-1].parameters():
                p.mul_(output_scale)
        self.critic = mlp(num_critic_obs, critic_hidden, 1, activation)
        self.std_type, self.discrete = std_type, discrete
        if not discrete and std_type == "log":
            self.log_std = nn.Parameter(torch.full((num_actions,), float(torch.tensor(init_std).log())))
        elif not discrete:
            self.std = nn.Parameter(torch.full((num_actions,), float(init_std)))

    def actor_parameters(self) -> list[nn.Parameter]:
        """The policy's parameters: the actor and its noise (what NPG, TRPO and REINFORCE's policy step move)."""
        return [p for name, p in self.named_parameters() if not name.startswith("critic.")]

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters())

    def action_std(self) -> torch.Tensor:
        if self.discrete:
            return torch.zeros(1)
        return self.log_std.exp() if self.std_type == "log" else self.std.clamp(min=MIN_STD)

    def distribution(self, obs: torch.Tensor) -> Normal | Categorical:
        out = self.actor(obs)
        if self.discrete:
            return Categorical(logits=out)
        # no argument checks: they cost three reductions a call in every env step and mini-batch
        return Normal(out, self.action_std().expand_as(out), validate_args=False)

    def sample(self, dist: Normal | Categorical) -> torch.Tensor:
        return dist.sample().unsqueeze(-1).float() if self.discrete else dist.sample()

    def log_prob(self, dist: Normal | Categorical, actions: torch.Tensor) -> torch.Tensor:
        """Of each row's action, summed over action dimensions: [B]."""
        return dist.log_prob(actions.squeeze(-1).long()) if self.discrete else dist.log_prob(actions).sum(-1)

    def entropy(self, dist: Normal | Categorical) -> torch.Tensor:
        return dist.entropy() if self.discrete else dist.entropy().sum(-1)

    def params(self, dist: Normal | Categorical) -> tuple[torch.Tensor, torch.Tensor]:
        """What a rollout keeps of the distribution for the KL later: (mean, std), or the log-probabilities
        twice (discrete)."""
        return (dist.logits, dist.logits) if self.discrete else (dist.mean, dist.stddev)

    def kl(self, old_mu: torch.Tensor, old_sigma: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor
           ) -> torch.Tensor:
        """KL(old || new) per row, from the two distributions' `params`: [B]."""
        if self.discrete:
            return (old_mu.exp() * (old_mu - mu)).sum(-1)
        return (torch.log(sigma / old_sigma) + (old_sigma.square() + (old_mu - mu).square())
                / (2 * sigma.square()) - 0.5).sum(-1)

    def act_inference(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.actor(obs)
        return out.argmax(-1, keepdim=True).float() if self.discrete else out

    def value(self, critic_obs: torch.Tensor) -> torch.Tensor:
        return self.critic(critic_obs).squeeze(-1)

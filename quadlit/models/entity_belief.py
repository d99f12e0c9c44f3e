"""EntityBelief: the recurrent actor-critic.

    obs -> node features -> encoder MLP (per node, shared) -> graph attention over the nodes
        -> mean-pool -> LSTM -> policy head (mean of a tanh-squashed Gaussian)
                             -> value head

The observation is viewed as a small graph of entities ("nodes"). By default the whole
observation is one node; ``num_nodes``/``node_slices`` split it into several (for example
the trunk and the four legs). With one node the attention is trivial (one neighbour, weight
1) and ``GraphAttention`` takes a fast path with the same answer.

Recurrent state convention: ``state = (h, c)``, each shaped (B, H) with B = batch
(environments) and H = ``lstm_hidden``: one row per environment, so a rollout buffer can store
it per step and a minibatch can index it by environment (``h[env_idx]``). It is returned in
the parameters' dtype (float32 unless the model itself is half precision), even under autocast.

Episode starts (CleanRL convention): ``episode_start[t, b] = 1`` when step t is the first step
of a new episode of environment b; the LSTM state of b is multiplied by
``1 - episode_start[t, b]`` just before step t is processed. A rollout that stores the state
at its first step passes ``episode_start[0] = done of the previous step``.

Shapes: T = time steps, B = batch, O = obs_dim, A = action_dim, H = lstm_hidden.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from quadlit.models.policy import SquashedGaussianPolicy
from quadlit.models.policy import wide as _wide

LSTMState = tuple[torch.Tensor, torch.Tensor]


class GraphAttention(nn.Module):
    """One multi-head graph-attention layer (GAT) on a fully connected graph with self loops.

    For node i: ``out_i = ELU(concat_k sum_j alpha^k_ij W^k x_j + bias)`` with
    ``alpha^k_ij = softmax_j LeakyReLU(a^k_dst . W^k x_i + a^k_src . W^k x_j)``, j over all
    nodes including i. Permutation-equivariant in the nodes.

    Args:
        in_dim: features per input node.
        heads: number of attention heads.
        head_dim: output features per head; the layer outputs ``heads * head_dim``.
        negative_slope: LeakyReLU slope of the attention scores (0.2 as in the GAT paper).
        single_node: build only what a one-node graph uses (no attention vectors), so that
            no parameter goes without a gradient (DDP requires that by default); such a layer
            accepts only N = 1.
    """

    def __init__(
        self,
        in_dim: int,
        heads: int = 4,
        head_dim: int = 32,
        negative_slope: float = 0.2,
        single_node: bool = False,
    ) -> None:
        super().__init__()
        if in_dim < 1 or heads < 1 or head_dim < 1:
            raise ValueError(f"in_dim, heads and head_dim must be >= 1, got {in_dim}, {heads}, {head_dim}")
        self.heads = heads
        self.head_dim = head_dim
        self.out_dim = heads * head_dim
        self.negative_slope = negative_slope
        self.proj = nn.Linear(in_dim, self.out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(self.out_dim))
        self.att_src: nn.Parameter | None = None
        self.att_dst: nn.Parameter | None = None
        if not single_node:
            bound = 1.0 / math.sqrt(head_dim)
            self.att_src = nn.Parameter(torch.empty(heads, head_dim).uniform_(-bound, bound))
            self.att_dst = nn.Parameter(torch.empty(heads, head_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: x (..., N, in_dim) -> (..., N, heads * head_dim)."""
        if x.shape[-2] == 1:
            return self.forward_single_node(x)
        if self.att_src is None:
            raise ValueError(f"built with single_node=True but got {x.shape[-2]} nodes")
        return self.forward_general(x)

    def forward_single_node(self, x: torch.Tensor) -> torch.Tensor:
        """Fast path for a one-node graph: the softmax over one neighbour is exactly 1.

        Shape: x (..., 1, in_dim) -> (..., 1, heads * head_dim).
        """
        return F.elu(self.proj(x) + self.bias)

    def forward_general(self, x: torch.Tensor) -> torch.Tensor:
        """Full attention over every pair of nodes; valid for any N >= 1.

        Shape: x (..., N, in_dim) -> (..., N, heads * head_dim).
        """
        wx = self.proj(x)
        wx_heads = wx.unflatten(-1, (self.heads, self.head_dim))  # (..., N, K, D)
        score_dst = (wx_heads * self.att_dst).sum(dim=-1)  # (..., N, K)
        score_src = (wx_heads * self.att_src).sum(dim=-1)  # (..., N, K)
        scores = score_dst.unsqueeze(-2) + score_src.unsqueeze(-3)  # (..., N_i, N_j, K)
        alpha = torch.softmax(F.leaky_relu(scores, self.negative_slope), dim=-2)
        mixed = torch.einsum("...ijk,...jkd->...ikd", alpha.to(wx_heads.dtype), wx_heads)
        return F.elu(mixed.flatten(-2) + self.bias)


class EntityBelief(SquashedGaussianPolicy):
    """Recurrent actor-critic: encoder -> graph attention -> LSTM -> policy and value heads.

    Args:
        obs_dim: length of one observation vector.
        action_dim: length of one action vector (actions in (-1, 1)).
        encoder_dim: output width of the per-node encoder MLP.
        gat_heads: attention heads of the graph-attention layer.
        gat_head_dim: features per attention head (layer width = heads * head_dim).
        lstm_hidden: LSTM hidden size H.
        num_nodes: entities the observation is split into; with no ``node_slices`` the
            observation is cut into ``num_nodes`` equal contiguous slices.
        init_log_std: initial value of the global, state-independent policy log std.
        node_slices: optional observation indices of each node, e.g.
            ``[[0, 1, 2], [3, 4, 9, 10]]``; nodes may differ in size (shorter ones are
            zero-padded before the shared encoder) and must number ``num_nodes``.
        value_head: give the LSTM a value head (the actor-critic shares the trunk); False when a
            separate critic network estimates values (the value outputs are then zeros).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        encoder_dim: int = 64,
        gat_heads: int = 4,
        gat_head_dim: int = 32,
        lstm_hidden: int = 128,
        num_nodes: int = 1,
        init_log_std: float = -0.5,
        node_slices: Sequence[Sequence[int]] | None = None,
        value_head: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (
            ("obs_dim", obs_dim),
            ("action_dim", action_dim),
            ("encoder_dim", encoder_dim),
            ("lstm_hidden", lstm_hidden),
            ("num_nodes", num_nodes),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        self.lstm_hidden = lstm_hidden
        self.num_nodes = num_nodes

        node_index = _node_index(obs_dim, num_nodes, node_slices)  # (N, W), obs_dim = padding
        self.register_buffer("node_index", node_index, persistent=False)
        node_width = node_index.shape[1]
        self._whole_obs_is_one_node = num_nodes == 1 and node_slices is None

        self.encoder = nn.Sequential(
            nn.Linear(node_width, encoder_dim),
            nn.ELU(),
            nn.Linear(encoder_dim, encoder_dim),
            nn.ELU(),
        )
        # Tells the shared encoder's outputs apart by node; unused (None) for a single node.
        self.node_embedding = None
        if num_nodes > 1:
            self.node_embedding = nn.Parameter(0.1 * torch.randn(num_nodes, encoder_dim))
        self.graph = GraphAttention(encoder_dim, gat_heads, gat_head_dim, single_node=num_nodes == 1)
        self.lstm = nn.LSTM(self.graph.out_dim, lstm_hidden)
        self.policy_head = nn.Linear(lstm_hidden, action_dim)
        self.value_head = nn.Linear(lstm_hidden, 1) if value_head else None
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))
        self._init_weights()

    def _init_weights(self) -> None:
        for name, param in self.lstm.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(param)
            else:
                nn.init.zeros_(param)
        # Small initial means: the first policy acts near a = 0 (the default pose in `pd` mode).
        nn.init.orthogonal_(self.policy_head.weight, gain=0.01)
        nn.init.zeros_(self.policy_head.bias)
        if self.value_head is not None:
            nn.init.orthogonal_(self.value_head.weight, gain=1.0)
            nn.init.zeros_(self.value_head.bias)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> LSTMState:
        """Zero LSTM state. Shape: h, c each (batch_size, H), in the parameters' dtype."""
        dtype = self.log_std.dtype
        device = self.log_std.device if device is None else device
        zeros = torch.zeros(batch_size, self.lstm_hidden, device=device, dtype=dtype)
        return zeros, zeros.clone()

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """Encoder + graph attention + mean-pool. Shape: obs (..., O) -> (..., heads * head_dim)."""
        if self._whole_obs_is_one_node:
            nodes = obs.unsqueeze(-2)  # (..., 1, O)
        else:
            padded = F.pad(obs, (0, 1))  # index obs_dim reads the zero padding
            nodes = padded[..., self.node_index]  # (..., N, W)
        features = self.encoder(nodes)  # (..., N, encoder_dim)
        if self.node_embedding is not None:
            features = features + self.node_embedding
        return self.graph(features).mean(dim=-2)

    def forward(
        self, obs: torch.Tensor, state: LSTMState, episode_start: torch.Tensor, need_state: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState | None]:
        """Run a sequence.

        Args:
            obs: shape (T, B, O).
            state: (h, c), each (B, H): the state before step 0.
            episode_start: shape (T, B), bool or float; 1 where step t starts a new episode.
            need_state: compute the final state (the PPO update does not need it).

        Returns:
            mean: action mean before the tanh, shape (T, B, A), float32 or wider.
            value: shape (T, B), float32 or wider.
            new_state: (h, c), each (B, H): the state after step T - 1 (None if not need_state).
        """
        if obs.dim() != 3 or episode_start.shape != obs.shape[:2]:
            raise ValueError(
                f"expected obs (T, B, O) and episode_start (T, B), got {tuple(obs.shape)} and "
                f"{tuple(episode_start.shape)}"
            )
        embedded = self.embed(obs)  # (T, B, F)
        core, new_state = self._run_lstm(embedded, state, episode_start, need_state)
        mean = self.policy_head(core)
        if self.value_head is not None:
            value = self.value_head(core).squeeze(-1)
        else:
            value = core.new_zeros(core.shape[:-1])
        return _wide(mean), _wide(value), new_state

    def _run_lstm(
        self, x: torch.Tensor, state: LSTMState, episode_start: torch.Tensor, need_state: bool = True
    ) -> tuple[torch.Tensor, LSTMState | None]:
        """LSTM over (T, B, F) with the state zeroed exactly where an episode starts.

        Packed form: each column is cut into its episode segments, packed as separate batch
        columns (left-aligned, zero-padded at the end), the first segment of a column starting
        from ``state`` and every later one from zeros. Padding only follows the real steps of a
        segment, so it never affects an output that is kept.
        """
        h, c = state
        steps, batch = x.shape[:2]
        starts = episode_start.bool()
        dtype = self.log_std.dtype
        if steps == 1 or not bool(starts[1:].any()):
            keep = (~starts[0]).to(h.dtype).unsqueeze(-1)
            out, (h1, c1) = self.lstm(x, ((h * keep).unsqueeze(0), (c * keep).unsqueeze(0)))
            return out, (h1.squeeze(0).to(dtype), c1.squeeze(0).to(dtype))
        # Two exact ways: pack episode segments as extra batch columns (one call, but T x S work
        # for S segments) or cut the sequence at every step where some column resets (B columns,
        # one call per chunk). Measured on CPU, each extra call costs about 5 % of a full pass.
        reset_steps = int(starts[1:].any(dim=1).sum())
        segments = batch + int(starts[1:].sum())
        if segments / batch <= 1.0 + 0.05 * reset_steps:
            return self._run_lstm_packed(x, state, starts, need_state)
        return self._run_lstm_chunked(x, state, starts, need_state)

    def _run_lstm_chunked(self, x: torch.Tensor, state: LSTMState, starts: torch.Tensor, need_state: bool = True):
        """LSTM cut at every step where any column starts an episode; one call per chunk."""
        h, c = state
        keep = (~starts).to(h.dtype)  # (T, B)
        reset_steps = torch.nonzero(starts.any(dim=1)).flatten().tolist()
        bounds = sorted({0, x.shape[0], *reset_steps})
        h, c = h.unsqueeze(0), c.unsqueeze(0)  # (1, B, H) as nn.LSTM wants
        outputs = []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            # Inside [start, stop) only step `start` may begin an episode.
            mask = keep[start].unsqueeze(-1)
            h, c = h * mask, c * mask
            out, (h, c) = self.lstm(x[start:stop], (h, c))
            outputs.append(out)
        dtype = self.log_std.dtype
        new_state = (h.squeeze(0).to(dtype), c.squeeze(0).to(dtype)) if need_state else None
        return torch.cat(outputs, dim=0), new_state

    def _run_lstm_packed(self, x: torch.Tensor, state: LSTMState, starts: torch.Tensor, need_state: bool = True):
        """LSTM with every episode segment packed as its own batch column; one call."""
        h, c = state
        steps, batch = x.shape[:2]
        dtype = self.log_std.dtype
        new_seg = starts.clone()
        new_seg[0] = True  # every column's first segment begins at t = 0
        seg_in_col = torch.cumsum(new_seg.long(), dim=0) - 1  # (T, B)
        segs_per_col = seg_in_col[-1] + 1  # (B,)
        col_offset = torch.cumsum(segs_per_col, dim=0) - segs_per_col  # (B,)
        seg_id = seg_in_col + col_offset  # (T, B) packed column of each step
        t_index = torch.arange(steps, device=x.device).unsqueeze(1).expand(steps, batch)
        seg_start = torch.cummax(torch.where(new_seg, t_index, torch.zeros_like(t_index)), dim=0).values
        pos = t_index - seg_start  # (T, B) row of each step inside its segment
        num_segs = int(segs_per_col.sum())

        packed = x.new_zeros(steps, num_segs, x.shape[-1])
        packed[pos, seg_id] = x
        h0 = h.new_zeros(num_segs, h.shape[-1])
        c0 = c.new_zeros(num_segs, c.shape[-1])
        carry = ~starts[0]  # columns whose first segment continues the given state
        h0[col_offset[carry]] = h[carry]
        c0[col_offset[carry]] = c[carry]
        out, (h_last, c_last) = self.lstm(packed, (h0.unsqueeze(0).to(x.dtype), c0.unsqueeze(0).to(x.dtype)))
        out = out[pos, seg_id]  # (T, B, H)
        if not need_state:
            return out, None
        # final state of each column = state after the last step of its last segment
        last = col_offset + segs_per_col - 1
        t_last = pos[-1]  # row of the last step inside that segment
        h_fin, c_fin = self._state_after(packed, out, h0, c0, last, t_last, h_last, c_last)
        return out, (h_fin.to(dtype), c_fin.to(dtype))

    def _state_after(self, packed, out_kept, h0, c0, last, t_last, h_last, c_last):
        """(h, c) of each column after its final real step. nn.LSTM returns the state after the
        padded end; a column whose last segment is shorter than T needs its state re-run over
        the real steps only (cheap: one segment per column)."""
        full = t_last == packed.shape[0] - 1
        h_fin = h_last.squeeze(0)[last]
        c_fin = c_last.squeeze(0)[last]
        if bool(full.all()):
            return h_fin, c_fin
        short = torch.nonzero(~full).flatten()
        segs = last[short]
        lengths = (t_last[short] + 1).tolist()
        h_fin, c_fin = h_fin.clone(), c_fin.clone()
        for k, (col, seg, length) in enumerate(zip(short.tolist(), segs.tolist(), lengths)):
            _, (hs, cs) = self.lstm(packed[:length, seg:seg + 1],
                                    (h0[seg:seg + 1].unsqueeze(0).to(packed.dtype),
                                     c0[seg:seg + 1].unsqueeze(0).to(packed.dtype)))
            h_fin[col], c_fin[col] = hs[0, 0], cs[0, 0]
        return h_fin, c_fin



def _node_index(obs_dim: int, num_nodes: int, node_slices: Sequence[Sequence[int]] | None) -> torch.Tensor:
    """Index table (num_nodes, width) into the observation padded by one zero at ``obs_dim``."""
    if node_slices is None:
        if obs_dim % num_nodes != 0:
            raise ValueError(
                f"obs_dim={obs_dim} does not split into num_nodes={num_nodes} equal slices; "
                "pass node_slices"
            )
        return torch.arange(obs_dim).reshape(num_nodes, obs_dim // num_nodes)
    if len(node_slices) != num_nodes:
        raise ValueError(f"node_slices has {len(node_slices)} nodes but num_nodes={num_nodes}")
    width = max(len(indices) for indices in node_slices)
    if width == 0:
        raise ValueError("node_slices: every node is empty")
    table = torch.full((num_nodes, width), obs_dim, dtype=torch.long)
    for node, indices in enumerate(node_slices):
        if len(indices) == 0:
            raise ValueError(f"node_slices[{node}] is empty")
        bad = [i for i in indices if not 0 <= i < obs_dim]
        if bad:
            raise ValueError(f"node_slices[{node}] has indices outside [0, {obs_dim}): {bad}")
        table[node, : len(indices)] = torch.tensor(list(indices), dtype=torch.long)
    return table

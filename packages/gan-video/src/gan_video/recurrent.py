"""Convolutional recurrent units: ConvGRU, ConvLSTM, K-TrajGRU, TSRU_c/p/s and PTSRU."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import warp_ops
from flax import nnx

from gan_video.spectral_norm import SNConv, SNLinear, prenormalize

__all__ = [
    "RECURRENT_UNITS",
    "TSRU",
    "ConvGRU",
    "ConvLSTM",
    "FactorizedHypernet",
    "KTrajGRU",
    "PixelwiseHypernet",
    "adaptive_max_pool",
    "make_recurrent_unit",
]

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
}


def _activation(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]


def adaptive_max_pool(x: jax.Array, size: int) -> jax.Array:
    """Adaptive max pooling to `size x size` cells (cells overlap when H or W < size).

    Args:
      x: [B, H, W, C].
      size: output resolution.

    Returns:
      [B, size, size, C]; cell i covers rows [floor(i H / size), ceil((i + 1) H / size)).
    """
    _, h, w, _ = x.shape

    def bounds(n: int) -> list[tuple[int, int]]:
        return [((i * n) // size, -((-(i + 1) * n) // size)) for i in range(size)]

    rows = [jnp.max(x[:, a:b], axis=1) for a, b in bounds(h)]  # size x [B, W, C]
    x = jnp.stack(rows, axis=1)  # [B, size, W, C]
    cols = [jnp.max(x[:, :, a:b], axis=2) for a, b in bounds(w)]
    return jnp.stack(cols, axis=2)  # [B, size, size, C]


class FactorizedHypernet(nnx.Module):
    """Hyper-network f for factorized warping (appendix F.1), input `[h_{t-1}; x_t]`.

    Kernels: conv3x3 -> ReLU -> adaptive max-pool 4x4 -> MLP (one hidden layer, ReLU) ->
    N kernels of k x k, softmax over the k*k taps. Selection map S: one conv3x3, softmax
    over the N kernels. Hidden widths are half the input channels.

    Args:
      in_features: channels of `[h_{t-1}; x_t]`.
      rngs: flax random streams.
      kernel_size: k of the warp kernels.
      num_kernels: N kernels in the basis.
      pool_size: adaptive pooling resolution.
    """

    def __init__(
        self,
        in_features: int,
        *,
        rngs: nnx.Rngs,
        kernel_size: int = 3,
        num_kernels: int = 9,
        pool_size: int = 4,
    ):
        hidden = max(in_features // 2, 1)
        self.kernel_size = kernel_size
        self.num_kernels = num_kernels
        self.pool_size = pool_size
        self.conv = SNConv(in_features, hidden, 3, rngs=rngs)
        self.mlp_hidden = SNLinear(pool_size * pool_size * hidden, hidden, rngs=rngs)
        self.mlp_out = SNLinear(hidden, kernel_size * kernel_size * num_kernels, rngs=rngs)
        self.selection = SNConv(in_features, num_kernels, 3, rngs=rngs)

    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """z: [B, H, W, in] -> (kernels [B, k*k, N], selection [B, H, W, N])."""
        b = z.shape[0]
        f = adaptive_max_pool(jax.nn.relu(self.conv(z)), self.pool_size)
        m = jax.nn.relu(self.mlp_hidden(f.reshape(b, -1)))
        logits = self.mlp_out(m).reshape(b, self.kernel_size**2, self.num_kernels)
        kernels = jax.nn.softmax(logits.astype(jnp.float32), axis=1)  # over taps
        selection = jax.nn.softmax(self.selection(z).astype(jnp.float32), axis=-1)  # over N
        return kernels, selection


class PixelwiseHypernet(nnx.Module):
    """Hyper-network f of PTSRU: a resolution-preserving CNN with two hidden layers.

    conv3x3 -> ReLU -> conv3x3 -> ReLU -> conv3x3 to k*k channels, softmax over taps.

    Args:
      in_features: channels of `[h_{t-1}; x_t]`.
      rngs: flax random streams.
      kernel_size: k of the per-pixel warp kernels.
    """

    def __init__(self, in_features: int, *, rngs: nnx.Rngs, kernel_size: int = 3):
        hidden = max(in_features // 2, 1)
        self.kernel_size = kernel_size
        self.conv1 = SNConv(in_features, hidden, 3, rngs=rngs)
        self.conv2 = SNConv(hidden, hidden, 3, rngs=rngs)
        self.conv_out = SNConv(hidden, kernel_size * kernel_size, 3, rngs=rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        """z: [B, H, W, in] -> per-pixel weights [B, H, W, k*k]."""
        f = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(z))))
        return jax.nn.softmax(self.conv_out(f).astype(jnp.float32), axis=-1)


class _Recurrent(nnx.Module):
    """Runs `step` over time; subclasses define `step(h, x) -> (h, output, warp_weights)`."""

    in_features: int
    hidden_features: int
    remat: bool = False  # recompute each time step in the backward pass (set by the Generator)

    def __call__(self, x: jax.Array, h0: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Unrolls the unit.

        Args:
          x: [B, T, H, W, Cx] inputs x_t.
          h0: [B, H, W, Ch] initial state (from the encoder).

        Returns:
          outputs [B, T, H, W, Ch] and an aux dict; warping units put the per-pixel warp
          weights of every step (Eq. 12 combined) under "warp_weights" [B, T, H, W, k*k].
        """
        b, _, hh, ww, cx = x.shape
        if cx != self.in_features:
            raise ValueError(f"x must have {self.in_features} channels, got shape {x.shape}")
        if h0.shape != (b, hh, ww, self.hidden_features):
            raise ValueError(
                f"h0 must have shape {(b, hh, ww, self.hidden_features)}, got {h0.shape}"
            )
        # Spectral normalisation once per call (the power iteration refines `u` once per
        # forward pass, as for any other layer); the scan body closes over the fixed kernels,
        # so its backward pass keeps no per-step copy of them.
        graphdef, params = nnx.split(prenormalize(self))

        def body(state, x_t):
            unit = nnx.merge(graphdef, params, copy=True)
            state, out, w = unit.step(state, x_t)
            return state, (out, w)

        if self.remat:
            body = jax.checkpoint(body)
        xs = jnp.moveaxis(x, 1, 0)  # [T, B, H, W, Cx]
        _, (outputs, weights) = jax.lax.scan(body, self.initial_state(h0), xs)
        aux = {} if weights is None else {"warp_weights": jnp.moveaxis(weights, 0, 1)}
        return jnp.moveaxis(outputs, 0, 1), aux

    def initial_state(self, h0: jax.Array):
        return h0


class ConvGRU(_Recurrent):
    """Convolutional GRU, Eqs. 1-5 (rho = ReLU as in DVD-GAN-FP).

    Args:
      in_features: channels of x_t.
      hidden_features: channels of h_t.
      rngs: flax random streams.
      activation: rho, "relu" or "tanh".
      conv_size: k of the gate convolutions.
    """

    def __init__(self, in_features, hidden_features, *, rngs, activation="relu", conv_size=3):
        self.in_features, self.hidden_features = in_features, hidden_features
        self.activation = activation
        _activation(activation)
        cin = in_features + hidden_features
        self.conv_r = SNConv(cin, hidden_features, conv_size, rngs=rngs)
        self.conv_u = SNConv(cin, hidden_features, conv_size, rngs=rngs)
        self.conv_c = SNConv(cin, hidden_features, conv_size, rngs=rngs)

    def step(self, h, x):
        hx = jnp.concatenate([h, x], axis=-1)
        r = jax.nn.sigmoid(self.conv_r(hx))  # Eq. 1
        c = _activation(self.activation)(self.conv_c(jnp.concatenate([r * h, x], -1)))  # Eqs. 2-3
        u = jax.nn.sigmoid(self.conv_u(hx))  # Eq. 4
        h = u * h + (1.0 - u) * c  # Eq. 5
        return h, h, None


class ConvLSTM(_Recurrent):
    """Convolutional LSTM (appendix F.3): hidden and cell each half of `hidden_features`.

    h_0 and c_0 are the first and second halves of the encoding; the output at each step is
    `[h_t; c_t]` (hidden_features channels).

    Args:
      in_features: channels of x_t.
      hidden_features: total channels of `[h; c]` (even).
      rngs: flax random streams.
      activation: rho, "relu" (default, appendix F.1) or "tanh".
      conv_size: k of the gate convolution.
    """

    def __init__(self, in_features, hidden_features, *, rngs, activation="relu", conv_size=3):
        if hidden_features % 2:
            raise ValueError(f"ConvLSTM hidden_features must be even, got {hidden_features}")
        self.in_features, self.hidden_features = in_features, hidden_features
        self.activation = activation
        _activation(activation)
        half = hidden_features // 2
        self.conv_gates = SNConv(in_features + half, 4 * half, conv_size, rngs=rngs)

    def initial_state(self, h0):
        half = self.hidden_features // 2
        return h0[..., :half], h0[..., half:]

    def step(self, state, x):
        h, c = state
        rho = _activation(self.activation)
        i, f, o, g = jnp.split(self.conv_gates(jnp.concatenate([h, x], -1)), 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * rho(g)
        h = jax.nn.sigmoid(o) * rho(c)
        return (h, c), jnp.concatenate([h, c], axis=-1), None


class KTrajGRU(_Recurrent):
    """K-TrajGRU, Eqs. 16-22: a ConvGRU whose gates see the factorized-warped h_{t-1}.

    Args:
      in_features: channels of x_t.
      hidden_features: channels of h_t.
      rngs: flax random streams.
      activation: rho, "tanh" by default (appendix F.2).
      conv_size: k of the gate convolutions.
      warp_size: k of the warp kernels.
      num_kernels: N kernels of the factorized basis.
    """

    def __init__(
        self,
        in_features,
        hidden_features,
        *,
        rngs,
        activation="tanh",
        conv_size=3,
        warp_size=3,
        num_kernels=9,
    ):
        self.in_features, self.hidden_features = in_features, hidden_features
        self.activation = activation
        _activation(activation)
        cin = in_features + hidden_features
        self.hypernet = FactorizedHypernet(
            cin, rngs=rngs, kernel_size=warp_size, num_kernels=num_kernels
        )
        self.conv_r = SNConv(cin, hidden_features, conv_size, rngs=rngs)
        self.conv_u = SNConv(cin, hidden_features, conv_size, rngs=rngs)
        self.conv_c = SNConv(cin, hidden_features, conv_size, rngs=rngs)

    def step(self, h, x):
        kernels, selection = self.hypernet(jnp.concatenate([h, x], -1))  # Eq. 16
        h_warp = warp_ops.factorized_warp(h, kernels, selection)  # Eq. 17
        hx = jnp.concatenate([h_warp, x], -1)
        r = jax.nn.sigmoid(self.conv_r(hx))  # Eq. 18
        c = _activation(self.activation)(  # Eqs. 19-20
            self.conv_c(jnp.concatenate([r * h_warp, x], -1))
        )
        u = jax.nn.sigmoid(self.conv_u(hx))  # Eq. 21
        h = u * h + (1.0 - u) * c  # Eq. 22
        return h, h, _combine(kernels, selection)


def _combine(kernels: jax.Array, selection: jax.Array) -> jax.Array:
    """Eq. 12 (for motion fields): [B, k*k, N], [B, H, W, N] -> [B, H, W, k*k]."""
    return jnp.einsum("bhwl,bql->bhwq", selection, kernels)


TSRU_FLOWS = ("c", "p", "s")


class TSRU(_Recurrent):
    """Transformation-based Spatial Recurrent Unit, Eqs. 6-10, and its variants.

    * flow "c" (TSRU_c): c from `[h~; x]` (Eq. 8), u from `[h_{t-1}; x]` (Eq. 9).
    * flow "p" (TSRU_p): c from `[h_{t-1}; x]`, so theta, u and c are computed in parallel.
    * flow "s" (TSRU_s): c from `[h~; x]`, u from `[h~; c]`.
    `h_t = u * h~ + (1 - u) * c` (Eq. 10). Warping is factorized (N kernels + selection map)
    or pixelwise (PTSRU, one k x k kernel per pixel).

    Args:
      in_features: channels of x_t.
      hidden_features: channels of h_t.
      rngs: flax random streams.
      flow: "c", "p" or "s".
      warp: "factorized" or "pixelwise".
      activation: rho, "relu" by default.
      conv_size: k of the gate convolutions.
      warp_size: k of the warp kernels.
      num_kernels: N kernels of the factorized basis.
    """

    def __init__(
        self,
        in_features,
        hidden_features,
        *,
        rngs,
        flow="p",
        warp="factorized",
        activation="relu",
        conv_size=3,
        warp_size=3,
        num_kernels=9,
    ):
        if flow not in TSRU_FLOWS:
            raise ValueError(f"flow must be one of {TSRU_FLOWS}, got {flow!r}")
        if warp not in ("factorized", "pixelwise"):
            raise ValueError(f"warp must be 'factorized' or 'pixelwise', got {warp!r}")
        self.in_features, self.hidden_features = in_features, hidden_features
        self.flow, self.warp, self.activation = flow, warp, activation
        _activation(activation)
        cin = in_features + hidden_features
        if warp == "factorized":
            self.hypernet = FactorizedHypernet(
                cin, rngs=rngs, kernel_size=warp_size, num_kernels=num_kernels
            )
        else:
            self.hypernet = PixelwiseHypernet(cin, rngs=rngs, kernel_size=warp_size)
        self.conv_c = SNConv(cin, hidden_features, conv_size, rngs=rngs)
        u_in = 2 * hidden_features if flow == "s" else cin
        self.conv_u = SNConv(u_in, hidden_features, conv_size, rngs=rngs)

    def step(self, h, x):
        hx = jnp.concatenate([h, x], -1)
        if self.warp == "factorized":
            kernels, selection = self.hypernet(hx)  # Eq. 6
            h_warp = warp_ops.factorized_warp(h, kernels, selection)  # Eq. 7
            weights = _combine(kernels, selection)
        else:
            weights = self.hypernet(hx)  # Eq. 6, pixelwise
            h_warp = warp_ops.pixelwise_warp(h, weights)  # Eq. 7 via Eq. 11
        rho = _activation(self.activation)
        c_in = hx if self.flow == "p" else jnp.concatenate([h_warp, x], -1)
        c = rho(self.conv_c(c_in))  # Eq. 8 (TSRU_p: [h_{t-1}; x_t])
        u_in = jnp.concatenate([h_warp, c], -1) if self.flow == "s" else hx
        u = jax.nn.sigmoid(self.conv_u(u_in))  # Eq. 9 (TSRU_s: [h~; c])
        h = u * h_warp + (1.0 - u) * c  # Eq. 10
        return h, h, weights


def _tsru(flow: str, warp: str = "factorized"):
    def make(in_features, hidden_features, *, rngs, **kwargs):
        return TSRU(in_features, hidden_features, rngs=rngs, flow=flow, warp=warp, **kwargs)

    return make


# PTSRU follows TSRU_s's information flow (it is "PTSRU_s" in the paper's Table 2).
RECURRENT_UNITS: dict[str, Callable[..., _Recurrent]] = {
    "convgru": ConvGRU,
    "convlstm": ConvLSTM,
    "k_trajgru": KTrajGRU,
    "tsru_c": _tsru("c"),
    "tsru_p": _tsru("p"),
    "tsru_s": _tsru("s"),
    "ptsru": _tsru("s", "pixelwise"),
}


def make_recurrent_unit(
    name: str, in_features: int, hidden_features: int, *, rngs: nnx.Rngs, **kwargs
) -> _Recurrent:
    """Builds a recurrent unit by name (one of `RECURRENT_UNITS`).

    Args:
      name: "convgru", "convlstm", "k_trajgru", "tsru_c", "tsru_p", "tsru_s" or "ptsru".
      in_features: channels of x_t.
      hidden_features: channels of h_t (ConvLSTM: of `[h; c]`).
      rngs: flax random streams.
      **kwargs: forwarded to the unit (activation, conv_size, warp_size, num_kernels).

    Returns:
      A module `unit(x [B, T, H, W, Cx], h0 [B, H, W, Ch]) -> (out [B, T, H, W, Ch], aux)`.
    """
    if name not in RECURRENT_UNITS:
        raise ValueError(f"recurrent unit must be one of {sorted(RECURRENT_UNITS)}, got {name!r}")
    return RECURRENT_UNITS[name](in_features, hidden_features, rngs=rngs, **kwargs)

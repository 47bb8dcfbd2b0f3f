"""Spectrally normalised dense and convolution layers with persistent power iteration."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = [
    "SNConv",
    "SNLinear",
    "SpectralState",
    "prenormalize",
    "refresh_spectral_vectors",
    "spectral_normalize",
]

_ORTHOGONAL = jax.nn.initializers.orthogonal()


class SpectralState(nnx.Variable):
    """Persistent power-iteration vector `u` of a spectrally normalised layer."""


def _l2_normalize(x: jax.Array, eps: float) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.sum(x * x) + eps)


def spectral_normalize(
    kernel: jax.Array,
    u: jax.Array,
    *,
    num_iterations: int = 1,
    eps: float = 1e-12,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Divides `kernel` by its first singular value, estimated by power iteration.

    The kernel is viewed as a matrix `[fan_in, out]` (all leading axes folded into
    `fan_in`). `u` is the running estimate of the top right-singular vector; it is
    refined by `num_iterations` power-iteration steps and never differentiated.

    Args:
      kernel: [..., out] weights.
      u: [out] current estimate of the top right-singular vector.
      num_iterations: power-iteration steps to run (0 reuses `u` as is).
      eps: numerical floor for normalisations.

    Returns:
      (kernel / sigma, new u [out], sigma []).
    """
    if u.shape != (kernel.shape[-1],):
        raise ValueError(f"u must have shape {(kernel.shape[-1],)}, got {u.shape}")
    w = kernel.reshape(-1, kernel.shape[-1]).astype(jnp.float32)  # [fan_in, out]
    u = u.astype(jnp.float32)
    w_sg = jax.lax.stop_gradient(w)
    for _ in range(num_iterations):
        u = _power_step(w_sg, u, eps)
    u = jax.lax.stop_gradient(u)
    v = jax.lax.stop_gradient(_l2_normalize(w_sg @ u, eps))
    sigma = v @ w @ u  # [] differentiable in w, as in Miyato et al.
    normalized = (w / jnp.maximum(sigma, eps)).reshape(kernel.shape).astype(kernel.dtype)
    return normalized, u, sigma


def _power_step(w: jax.Array, u: jax.Array, eps: float) -> jax.Array:
    """One power-iteration step on `w: [fan_in, out]`: `u <- normalize(normalize(w u) w)`."""
    v = _l2_normalize(w @ u, eps)  # [fan_in]
    return _l2_normalize(v @ w, eps)  # [out]


def _initial_u(key: jax.Array, out: int) -> jax.Array:
    return _l2_normalize(jax.random.normal(key, (out,), jnp.float32), 1e-12)


class _SpectralLayer(nnx.Module):
    """Shared spectral-norm plumbing: `kernel` Param, `u` state and the view flag."""

    def _init_spectral(self, out: int, rngs: nnx.Rngs, num_iterations: int) -> None:
        self.u = SpectralState(_initial_u(rngs.params(), out))
        self.num_iterations = num_iterations
        self.update_spectral = True
        # True in a copy whose `kernel` already holds `normalized_kernel()` (see
        # `prenormalize`): a layer applied at every step of a scan is normalised once per call.
        self.prenormalized = False

    def set_view(self, update_spectral: bool | None = None) -> None:
        """Selects whether a forward pass refines and stores the power-iteration vector.

        Args:
          update_spectral: if True (training), each call runs power iteration and
            stores the refined `u`; if False (evaluation), `u` is used frozen.
        """
        if update_spectral is not None:
            self.update_spectral = update_spectral

    def normalized_kernel(self) -> jax.Array:
        """Returns the kernel divided by its estimated top singular value."""
        if self.prenormalized:
            return self.kernel[...]
        iters = self.num_iterations if self.update_spectral else 0
        w, u, _ = spectral_normalize(self.kernel[...], self.u[...], num_iterations=iters)
        if self.update_spectral:
            self.u[...] = u
        return w


class SNLinear(_SpectralLayer):
    """Dense layer `y = x @ (W / sigma(W)) + b` with orthogonal init.

    Args:
      in_features: input width.
      out_features: output width.
      rngs: flax random streams (uses `params`).
      use_bias: add a learned bias.
      num_iterations: power-iteration steps per training call.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rngs: nnx.Rngs,
        use_bias: bool = True,
        num_iterations: int = 1,
    ):
        self.in_features = in_features
        self.out_features = out_features
        self.kernel = nnx.Param(_ORTHOGONAL(rngs.params(), (in_features, out_features)))
        self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
        self._init_spectral(out_features, rngs, num_iterations)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: [..., in_features] -> [..., out_features]."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x last axis must be {self.in_features}, got shape {x.shape}")
        y = x @ self.normalized_kernel()
        if self.bias is not None:
            y = y + self.bias[...]
        return y


_DIMENSION_NUMBERS = {
    2: ("NHWC", "HWIO", "NHWC"),
    3: ("NDHWC", "DHWIO", "NDHWC"),
}


class SNConv(_SpectralLayer):
    """2D or 3D 'SAME' convolution with a spectrally normalised, orthogonally initialised kernel.

    Args:
      in_features: input channels.
      out_features: output channels.
      kernel_size: int or tuple; its length (or `ndim`) picks 2D or 3D.
      rngs: flax random streams (uses `params`).
      ndim: number of spatial dims (2 or 3) when `kernel_size` is an int.
      use_bias: add a learned bias.
      num_iterations: power-iteration steps per training call.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | tuple[int, ...] = 3,
        *,
        rngs: nnx.Rngs,
        ndim: int = 2,
        use_bias: bool = True,
        num_iterations: int = 1,
    ):
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size,) * ndim
        if len(kernel_size) not in _DIMENSION_NUMBERS:
            raise ValueError(f"kernel_size must have 2 or 3 dims, got {kernel_size}")
        self.in_features = in_features
        self.out_features = out_features
        self.kernel_size = tuple(kernel_size)
        shape = (*self.kernel_size, in_features, out_features)
        self.kernel = nnx.Param(_ORTHOGONAL(rngs.params(), shape))
        self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
        self._init_spectral(out_features, rngs, num_iterations)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: [N, (D,) H, W, in_features] -> [N, (D,) H, W, out_features]."""
        nd = len(self.kernel_size)
        if x.ndim != nd + 2 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must be [N, {'D, ' if nd == 3 else ''}H, W, {self.in_features}], "
                f"got shape {x.shape}"
            )
        y = jax.lax.conv_general_dilated(
            x,
            self.normalized_kernel().astype(x.dtype),
            window_strides=(1,) * nd,
            padding="SAME",
            dimension_numbers=_DIMENSION_NUMBERS[nd],
            preferred_element_type=jnp.float32,
        )
        if self.bias is not None:
            # In f32, so that the bias gradient (a sum over every position) is summed in f32
            # when activations are bf16.
            y = y + self.bias[...]
        return y.astype(x.dtype)


def prenormalize(module: nnx.Module) -> nnx.Module:
    """A copy of `module` whose spectral layers hold their normalised kernels, fixed.

    Runs each layer's power iteration once (storing the refined `u` in `module`, when
    `update_spectral`) and returns a copy in which every `SNConv`/`SNLinear` uses `W / sigma`
    as is. A recurrent unit applies its layers at every step of a `lax.scan`: normalising
    inside the step would refine `u` once per step and make the scan keep one normalised
    kernel per step for the backward pass (at ch=120 that alone overflows a TPU v3 core);
    with the copy the kernels are loop-invariant and the gradient still reaches the raw
    kernels through `W / sigma`.

    Args:
      module: any module (its spectral layers are found recursively).

    Returns:
      the copy (differentiable in `module`'s parameters).
    """
    copy = nnx.clone(module)
    for _, layer in nnx.iter_modules(copy):
        if isinstance(layer, _SpectralLayer) and not layer.prenormalized:
            layer.kernel[...] = layer.normalized_kernel()
            layer.prenormalized = True
    nnx.update(module, nnx.state(copy, SpectralState))
    return copy


def refresh_spectral_vectors(module: nnx.Module, num_iterations: int) -> nnx.Module:
    """Runs `num_iterations` power-iteration steps on every spectral layer's current kernel.

    For weights the vectors `u` were not refined on, such as the generator's exponential
    moving average: evaluating it with the live weights' `u` would divide each averaged kernel
    by an estimate of another matrix's top singular value. A few steps from the live `u` (a
    good start: the average is close to the live weights) make `sigma` the averaged kernel's.

    Args:
      module: any module (its spectral layers are found recursively); updated in place.
      num_iterations: power-iteration steps (>= 1).

    Returns:
      `module`.
    """
    if not isinstance(num_iterations, int) or isinstance(num_iterations, bool):
        raise TypeError(f"num_iterations: expected an int >= 1, got {num_iterations!r}")
    if num_iterations < 1:
        raise ValueError(f"num_iterations: expected an int >= 1, got {num_iterations}")
    for _, layer in nnx.iter_modules(module):
        if isinstance(layer, _SpectralLayer) and not layer.prenormalized:
            kernel = layer.kernel[...]
            w = jax.lax.stop_gradient(kernel.reshape(-1, kernel.shape[-1]).astype(jnp.float32))

            def step(_, u, w=w):  # a loop, not an unrolled chain: tens of steps compile fast
                return _power_step(w, u, 1e-12)

            u = jax.lax.fori_loop(0, num_iterations, step, layer.u[...].astype(jnp.float32))
            layer.u[...] = u.astype(layer.u[...].dtype)
    return module

"""The costs of artistic style transfer (3.4, Gatys, Ecker, Bethge 2016), each with its gradient.

    L_content(x_content, x^, l) = 1/2 sum_{f,j} (a^l_content,f,j - a^^l_f,j)^2
    G^^l_{f,f'} = sum_j a^^l_{f,j} a^^l_{f',j}                                  (Gram matrix)
    L_style(x_style, x^, l) = 1/(4 (F_l M_l)^2) sum_{f,f'} (G^l_style,f,f' - G^^l_f,f')^2
    L_style = sum_l w_l L_style(x_style, x^, l),   w_1 = ... = w_5 = 1/5
    L_total = alpha L_content + beta L_style (+ tv L_TV),   alpha/beta = 1e-3

f indexes the features, j the H_l x W_l positions (M_l = H_l W_l). Every function takes a mini-batch
(N pictures, one cost each) and returns the costs summed over it with dC/da; the 1/N of a mean
over pictures appears once, in :meth:`PerceptualLoss.__call__` (fast style transfer trains on
batches; Gatys's optimisation has N = 1).

Shapes:
    a, a^: (N, F, H, W) activations of one layer; G: (N, F, F); x: (N, 3, H, W) pictures.
"""
from __future__ import annotations

import math
import numbers

from tiefnet.backend import Array, xp
from tiefnet.errors import ConfigError, ShapeError
from tiefnet.vision.features import FeatureNet


def gram(a: Array) -> Array:
    """G_{f,f'} = sum_j a_{f,j} a_{f',j} = <a_{f,:}, a_{f',:}> for each picture: (N, F, H, W) -> (N, F, F)."""
    A = positions_by_features(a)  # (N, M, F): column f is feature map f
    return A.transpose(0, 2, 1) @ A  # (N, F, F)


def positions_by_features(a: Array) -> Array:
    """(N, F, H, W) -> the (N, M, F) matrix whose column f is feature map f: the transpose of the
    lecture's a_{f,j}, because a Conv2d leaves its features innermost in memory (then this is a view)."""
    N, F, H, W = a.shape
    return a.transpose(0, 2, 3, 1).reshape(N, H * W, F)


def content_loss(a: Array, a_content: Array) -> tuple[float, Array]:
    """L = 1/2 sum_{f,j} (a_content,f,j - a^_f,j)^2, summed over the N pictures; dL/da^ = a^ - a_content."""
    diff = a - a_content  # (N, F, H, W)
    return 0.5 * float(xp.vdot(diff, diff)), diff


def style_loss(a: Array, G_style: Array) -> tuple[float, Array]:
    """L = 1/(4 (F M)^2) sum_{f,f'} (G_style - G^)^2 per picture, summed; with G symmetric,
    dL/da^_{f,j} = 1/(F M)^2 sum_{f'} (G^ - G_style)_{f,f'} a^_{f',j}.

    G_style: (1, F, F) (one style for all pictures) or (N, F, F).
    """
    N, F, H, W = a.shape
    M = H * W
    A = positions_by_features(a)  # (N, M, F)
    diff = A.transpose(0, 2, 1) @ A - G_style  # G^ - G_style, (N, F, F)
    scale = 1.0 / (F * M) ** 2
    loss = 0.25 * scale * float(xp.vdot(diff, diff))
    grad = A @ (scale * diff)  # (N, M, F): d/dA of sum (G^ - G)^2 = 4 (G^ - G) A, times 1/(4 (F M)^2)
    return loss, grad.reshape(N, H, W, F).transpose(0, 3, 1, 2)  # (N, F, H, W), features innermost as a


def tv_loss(x: Array) -> tuple[float, Array]:
    """Total variation L_TV = sum_{c,i,j} (x_{i+1,j} - x_{i,j})^2 + (x_{i,j+1} - x_{i,j})^2, summed over
    the pictures, and dL_TV/dx: a smoothness term against high-frequency noise (Mahendran & Vedaldi)."""
    down = x[:, :, 1:, :] - x[:, :, :-1, :]  # (N, C, H - 1, W)
    right = x[:, :, :, 1:] - x[:, :, :, :-1]  # (N, C, H, W - 1)
    dx = xp.zeros_like(x)
    dx[:, :, 1:, :] += 2 * down
    dx[:, :, :-1, :] -= 2 * down
    dx[:, :, :, 1:] += 2 * right
    dx[:, :, :, :-1] -= 2 * right
    return float(xp.vdot(down, down) + xp.vdot(right, right)), dx


class PerceptualLoss:
    """L_total(x_content, x_style, x^) = alpha L_content + beta L_style + tv L_TV, averaged over a
    mini-batch of pictures x^, and dL_total/dx^ by one backward pass through the feature network.

    The style image's Gram matrices are computed once here, rescaled to pictures of ``size`` (H, W)
    when that differs from the painting's; the content targets a^l_content are given per call (Gatys:
    one photo; fast style transfer: the photos of the mini-batch).
    """

    def __init__(self, features: FeatureNet, style: Array, alpha: float = 1.0, beta: float = 1e3,
                 tv: float = 0.0, size: tuple[int, int] | None = None):
        for name, value in (("alpha", alpha), ("beta", beta), ("tv", tv)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name}={value!r} must be a finite number >= 0")
        self.features, self.alpha, self.beta, self.tv = features, float(alpha), float(beta), float(tv)
        style_acts = features.forward(style)
        self.G_style = {name: gram(style_acts[name]) for name in features.style_weights}  # (1, F_l, F_l)
        if size is not None and tuple(size) != tuple(style.shape[2:]):
            # G sums over the M_l positions of a layer: for pictures of another size than the painting's,
            # G_style M_l(picture) / M_l(painting) holds the same correlations per position (the painting
            # keeps its own aspect ratio instead of being stretched to the picture's)
            probe = features.forward(xp.zeros((1, 3, *size), dtype=style.dtype))
            for name in self.G_style:
                self.G_style[name] *= math.prod(probe[name].shape[2:]) / math.prod(style_acts[name].shape[2:])

    def content_target(self, content: Array) -> Array:
        """a^l_content of the content layer for pictures (N, 3, H, W)."""
        return self.features.forward(content)[self.features.content_layer]

    def __call__(self, x: Array, a_content: Array) -> tuple[float, dict[str, float], Array]:
        """(L_total, its parts {"content", "style", "tv", "style:conv1_1", ...}, dL_total/dx) for x (N, 3, H, W)."""
        acts = self.features.forward(x, train=True)
        content_layer = self.features.content_layer
        if acts[content_layer].shape != a_content.shape:
            raise ShapeError(f"content target {tuple(a_content.shape)} does not match the picture's "
                             f"{content_layer} features {tuple(acts[content_layer].shape)}")
        N = x.shape[0]
        parts: dict[str, float] = {}
        grads: dict[str, Array] = {}
        L_content, grads[content_layer] = content_loss(acts[content_layer], a_content)
        grads[content_layer] *= self.alpha / N
        L_style = 0.0
        for name, w in self.features.style_weights.items():
            L_l, g = style_loss(acts[name], self.G_style[name])
            parts[f"style:{name}"] = L_l / N
            L_style += w * L_l
            g *= self.beta * w / N
            grads[name] = g if name not in grads else grads[name] + g  # a layer may carry both costs
        dx = self.features.backward(grads)
        L_tv, d_tv = tv_loss(x)  # reported also when its weight is 0
        if self.tv:
            dx += (self.tv / N) * d_tv
        parts.update(content=L_content / N, style=L_style / N, tv=L_tv / N)
        total = (self.alpha * L_content + self.beta * L_style + self.tv * L_tv) / N
        return total, parts, dx

    def parts_of(self, x: Array, a_content: Array) -> dict[str, float]:
        """The costs alone (no gradient) of pictures x against content targets a_content."""
        acts = self.features.forward(x)
        N = x.shape[0]
        L_style = sum(w * style_loss(acts[n], self.G_style[n])[0] for n, w in self.features.style_weights.items())
        return {"content": content_loss(acts[self.features.content_layer], a_content)[0] / N, "style": L_style / N,
                "tv": tv_loss(x)[0] / N}


__all__ = ["PerceptualLoss", "content_loss", "gram", "style_loss", "tv_loss"]

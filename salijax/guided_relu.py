"""The guided ReLU of guided backpropagation (Springenberg et al., ICLR 2015 workshop).

Forward, it is the ReLU, max(x, 0). Backward, it passes an incoming gradient g
only where the ReLU's forward input was positive AND g itself is positive:

  d_in = g * 1[x > 0] * 1[g > 0]

(the plain ReLU passes g * 1[x > 0]). A salijax model uses it in place of every
ReLU when built with it, sharing the same variables:

    guided = module.clone(relu=guided_relu)
    logits = guided.apply(variables, images)   # the model's logits, unchanged
    grads = jax.grad(lambda x: guided.apply(variables, x)[0, c])(images)  # guided backprop

`salijax.models.classifier` fills `Classifier.guided_apply` this way. It is a
`jax.custom_vjp`: reverse-mode (grad, vjp) only; forward-mode (jvp) is not
defined.
"""

import jax
import jax.numpy as jnp


@jax.custom_vjp
def guided_relu(x: jax.Array) -> jax.Array:
  """max(x, 0) with the guided backward pass (see the module doc); any shape."""
  return jax.nn.relu(x)


def _guided_relu_forward(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  return jax.nn.relu(x), x


def _guided_relu_backward(x: jax.Array, g: jax.Array) -> tuple[jax.Array]:
  return (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),)


guided_relu.defvjp(_guided_relu_forward, _guided_relu_backward)

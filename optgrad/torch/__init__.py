"""PyTorch-faithful optimizers: ``torch.optim``'s names, arguments, defaults and numbers.

Built from the same primitives as the rest of optgrad; ``torch`` itself is never imported.
"""

from . import lr_scheduler as lr_scheduler

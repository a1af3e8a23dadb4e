"""PyTorch-faithful optimizers: ``torch.optim``'s names, arguments, defaults and numbers.

Built from the same primitives as the rest of optgrad; ``torch`` itself is never imported.
"""

from . import lr_scheduler as lr_scheduler
from . import swa_utils as swa_utils
from ._adagrad import Adagrad as Adagrad
from ._adam import Adam as Adam
from ._adam import AdamW as AdamW
from ._clip import ClipGradNormState as ClipGradNormState
from ._clip import clip_grad_norm as clip_grad_norm
from ._clip import clip_grad_value as clip_grad_value
from ._rmsprop import RMSprop as RMSprop
from ._sgd import SGD as SGD
# >>> torch
# <<< torch
# >>> lbfgs
# <<< lbfgs
# >>> ecosystem
# <<< ecosystem
